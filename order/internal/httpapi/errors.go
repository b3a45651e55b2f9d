package httpapi

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/platform/problem"
)

// errorMap is the one table from domain errors to statuses, handed to the platform's
// ErrorHandler; the error's message becomes the answer's detail.
var errorMap = problem.Map{
	{Err: order.ErrProductNotFound, Status: http.StatusNotFound},
	{Err: order.ErrIdempotencyMismatch, Status: http.StatusUnprocessableEntity},
	{Err: order.ErrOutOfStock, Status: http.StatusConflict},
	{Err: order.ErrInvalidTransition, Status: http.StatusConflict},
	{Err: order.ErrConcurrentUpdate, Status: http.StatusConflict},
	{Err: order.ErrIdempotencyGone, Status: http.StatusConflict},
	{Err: order.ErrPaymentMismatch, Status: http.StatusConflict},
	{Err: order.ErrDeleted, Status: http.StatusConflict},
}

// Reasons of the 409 answers that need one (translateErrors).
const (
	reasonTooManyUnpaid = "too_many_unpaid_orders"
	reasonExpired       = "order_expired"
)

// notFoundDetail is the detail of authz.AdminOrOwner's refusal. A missing order is answered
// with the same words, so a shopper probing ids cannot tell "not yours" from "not there",
// not even by the detail.
const notFoundDetail = "no such resource"

// translateErrors turns the errors that need more than a status and a message into
// problems, before the platform's ErrorHandler writes them: the payment outcomes (whose
// causes go to the log, not to the shopper) and the not-found answer above. Everything
// else passes through to errorMap, and invalid fields to platform/problem's 422.
func (h *handlers) translateErrors(c *fiber.Ctx) error {
	err := c.Next()
	if err == nil {
		return nil
	}
	var (
		declined *payment.DeclinedError
		refused  *payment.RefusedError
	)
	switch {
	case errors.Is(err, order.ErrNotFound):
		return problem.NotFound(notFoundDetail)
	// Two conflicts a client acts on differently from the others (place a new order, pay
	// or cancel an old one) carry a reason to tell them apart by, as a decline does.
	case errors.Is(err, order.ErrTooManyUnpaid):
		return problem.Conflict(err.Error()).With("reason", reasonTooManyUnpaid)
	case errors.Is(err, order.ErrExpired):
		return problem.Conflict(err.Error()).With("reason", reasonExpired)
	case errors.As(err, &declined):
		p := problem.New(http.StatusPaymentRequired, declined.Error()+
			"; the order is still pending and can be paid again, with another card if need be")
		if declined.PaymentID != "" {
			p = p.With("paymentId", declined.PaymentID)
		}
		if declined.Reason != "" {
			p = p.With("reason", declined.Reason)
		}
		return p
	case errors.As(err, &refused):
		p := problem.New(refused.Status, refused.Error())
		p.Errors = refused.Fields
		return p
	case errors.Is(err, payment.ErrFailed):
		h.log.Warn("card processor failed", "request_id", requestID(c), "err", err)
		return problem.New(http.StatusBadGateway, payment.ErrFailed.Error())
	case errors.Is(err, payment.ErrSessionEnded):
		h.log.Info("token exchange refused", "request_id", requestID(c), "err", err)
		return problem.New(http.StatusUnauthorized, payment.ErrSessionEnded.Error()).
			WithHeader(fiber.HeaderWWWAuthenticate, `Bearer error="invalid_token", error_description="the session has ended"`)
	case errors.Is(err, payment.ErrUnavailable):
		h.log.Warn("payment service unavailable", "request_id", requestID(c), "err", err)
		p := problem.New(http.StatusServiceUnavailable, payment.ErrUnavailable.Error())
		p.RetryAfter = 5
		return p
	case errors.Is(err, payment.ErrTimeout):
		h.log.Warn("payment service timed out", "request_id", requestID(c), "err", err)
		return problem.New(http.StatusGatewayTimeout, payment.ErrTimeout.Error())
	case errors.Is(err, payment.ErrUpstream):
		h.log.Error("payment service failed", "request_id", requestID(c), "err", err)
		return problem.New(http.StatusBadGateway, payment.ErrUpstream.Error())
	}
	return err
}
