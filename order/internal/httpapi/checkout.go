package httpapi

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/validation"
)

// payRequest is the card to pay with. The amount is not a field: the payment service reads
// the order's total from this service.
type payRequest struct {
	Card *payment.Card `json:"card"`
}

// payOrder charges the order through the payment service and marks it paid when, and only
// when, the payment service approved the charge.
//
//   - The shopper's Authorization header goes to the payment service unchanged (JWT
//     propagation): it charges on behalf of the real caller, and reads the order, hence the
//     amount, from this service with the same token.
//   - The Idempotency-Key names the order's current payment attempt. It moves on only after
//     an answer that ends the attempt without a charge (payment.Definitive); after a
//     timeout or an unexplained 5xx the retry sends the same key, so a charge that did go
//     through is replayed, not repeated.
//   - Declined: 402, the order stays pending. Unavailable, failed or slow: 503/502/504, the
//     order stays pending, its attempt in flight until reconciliation settles it (or the
//     shopper's retry does, replaying the attempt under the same key). Approved but the
//     order was cancelled meanwhile: 409 (the payment must be refunded; the error log says
//     which).
//   - Pay requests of one order racing each other: one is answered 200, every other one
//     409, whatever Idempotency-Keys the clients sent (see gaveUp).
func (h *handlers) payOrder(c *fiber.Ctx) error {
	o := loadedOrder(c)
	var req payRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Card == nil {
		return validation.New(validation.FieldError{Field: "card", Message: "is required"})
	}
	// Checked before calling out, so a paid or cancelled order is never sent to be charged.
	if err := o.CheckPayable(); err != nil {
		return err
	}
	ctx := c.UserContext()
	// From here until the outcome is recorded the order awaits its payment. Should that
	// never happen (a timeout, or this service stopping mid-charge), reconciliation finds
	// the order by this mark and asks the payment service how the attempt ended.
	if err := h.store.StartPaymentAttempt(ctx, o.ID); err != nil {
		return err
	}
	pay, err := h.payments.Charge(ctx, payment.Charge{
		OrderID:        o.ID,
		Card:           *req.Card,
		Authorization:  c.Get(fiber.HeaderAuthorization),
		IdempotencyKey: o.PaymentKey(),
		RequestID:      requestID(c),
	})
	if payment.Definitive(err) {
		// This attempt is over and charged nothing; the next one must not replay its answer.
		// Failing to record that is logged, not answered: the shopper's news is the decline.
		if aerr := h.store.NextPaymentAttempt(ctx, o.ID, o.PaymentAttempts); aerr != nil {
			h.log.Error("moving to the next payment attempt", "request_id", requestID(c), "order", o.ID, "err", aerr)
		}
		return err
	}
	if err != nil {
		return err
	}
	if pay.Amount.Amount != o.Total.Amount || pay.Amount.Currency != o.Total.Currency {
		h.log.Error("payment approved for another amount than the order's total; not marking it paid",
			"request_id", requestID(c), "order", o.ID, "payment", pay.ID, "charged", pay.Amount.Amount, "total", o.Total.Amount)
		return payment.ErrUpstream
	}
	paid, recorded, err := h.store.MarkPaid(ctx, o.ID, pay.ID)
	if errors.Is(err, order.ErrInvalidTransition) || errors.Is(err, order.ErrNotFound) {
		h.log.Error("payment approved for an order that is no longer payable; it must be refunded",
			"request_id", requestID(c), "order", o.ID, "payment", pay.ID)
		return problem.Conflict("the order was cancelled or deleted while it was being paid; payment " +
			pay.ID + " was approved and will have to be refunded")
	}
	if err != nil {
		return err
	}
	if pay.Replayed && !(recorded && h.gaveUp(o)) {
		return errPaidByAnother
	}
	return c.JSON(toOrder(paid))
}

// errPaidByAnother answers a pay request that raced another one of the same order and lost.
var errPaidByAnother = problem.Conflict("the order has already been paid; nothing more was charged")

// gaveUp reports whether the checkout that last sent o's attempt (o as loaded before this
// request sent it) has stopped waiting for the answer.
//
// Every pay request of an attempt sends the same Idempotency-Key, so of two racing ones
// the payment service charges for one and replays that charge to the other. The one whose
// charge it is answers 200; a replay is this request's to answer only when it is the retry
// of a checkout that timed out, which nobody else will answer for, and then only if this
// request recorded the payment. Every other one gets 409, so exactly one request is told
// that its payment went through.
func (h *handlers) gaveUp(o order.Order) bool {
	return !o.PaymentStartedAt.IsZero() && time.Since(o.PaymentStartedAt) >= h.payments.Timeout()
}
