package httpapi

import (
	"errors"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/validation"
)

// internalRoutes is THE route table of the internal listener. api/internal.yaml describes
// the same routes (TestInternalOpenAPIMatchesTheTable). The payment service is the only
// caller: it reports approvals and refunds.
func (h *handlers) internalRoutes() []svcauth.Route {
	payments := []string{mtls.ID("payment-service")}
	return []svcauth.Route{
		{Method: fiber.MethodPost, Path: "/internal/orders/:id/paid", Callers: payments, Handler: h.recordPaid},
		{Method: fiber.MethodPost, Path: "/internal/orders/:id/refunded", Callers: payments, Handler: h.recordRefund},
	}
}

// InternalDeps is what the internal API needs.
type InternalDeps struct {
	Store *store.Store
	// Authenticate verifies the bearer token (authn middleware), with the order service's
	// own name among the accepted audiences.
	Authenticate fiber.Handler
	Logger       *slog.Logger
}

// Internal is the order service's internal API.
type Internal struct {
	// App must be served behind mtls (TLS 1.3, a client certificate from the internal CA
	// required). Each route then checks, in this order: the certificate's identity against
	// the route's callers (403), the bearer token (401), its SERVICE role (403), and that
	// the token was issued to the same service the certificate names (403); see
	// svcauth.Guard.
	App *fiber.App
	// Routes is the table App was built from.
	Routes []svcauth.Route
}

// NewInternal builds the internal API.
func NewInternal(d InternalDeps) *Internal {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	h := &handlers{store: d.Store, log: d.Logger}
	app := server.New(server.Options{Name: "order-internal", Logger: d.Logger, Errors: errorMap})
	app.Use(noStore, h.translateErrors)
	routes := h.internalRoutes()
	svcauth.Mount(app, d.Authenticate, routes)
	return &Internal{App: app, Routes: routes}
}

// unlessDeleted turns err, when it is order.ErrNotFound for an order that was deleted,
// into order.ErrDeleted: a shopper may delete an order that looked unpaid after a lost
// checkout, and the payment service's reports about it must then stop (409), not be
// retried for ever as for an unknown order (404).
func (h *handlers) unlessDeleted(c *fiber.Ctx, err error) error {
	if !errors.Is(err, order.ErrNotFound) {
		return err
	}
	deleted, derr := h.store.Deleted(c.UserContext(), c.Params("id"))
	switch {
	case derr != nil:
		return errors.Join(err, derr)
	case !deleted:
		return err
	}
	return order.ErrDeleted
}

// notPayable logs an approval that arrived for an order that can no longer be paid by it
// (cancelled, deleted, or paid by another payment): the shopper was charged for nothing,
// and a person must refund the payment. It returns err.
func (h *handlers) notPayable(c *fiber.Ctx, err error, paymentID string) error {
	if errors.Is(err, order.ErrInvalidTransition) || errors.Is(err, order.ErrDeleted) {
		h.log.Error("payment approved for an order that is no longer payable; it must be refunded",
			"request_id", requestID(c), "order", c.Params("id"), "payment", paymentID, "reason", err.Error())
	}
	return err
}

// paidReport is the payment service's notice of an approved charge.
type paidReport struct {
	PaymentID string `json:"paymentId"`
	Amount    *struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// recordPaid settles an order whose checkout may not have recorded its approved charge
// (the answer was lost to a timeout or a restart). Usually the checkout did, and the
// notice changes nothing; otherwise the order becomes paid, once, and the audit log says
// how. A notice for an order that is no longer pending is 409, and logged: the payment
// must be refunded.
func (h *handlers) recordPaid(c *fiber.Ctx) error {
	var req paidReport
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var missing []validation.FieldError
	if !order.ValidID(req.PaymentID) {
		missing = append(missing, validation.FieldError{Field: "paymentId", Message: "must be a payment id (UUID)"})
	}
	if req.Amount == nil {
		missing = append(missing, validation.FieldError{Field: "amount", Message: "is required"})
	}
	if len(missing) > 0 {
		return validation.New(missing...)
	}
	ctx := c.UserContext()
	o, err := h.store.Order(ctx, c.Params("id"))
	if err != nil {
		return h.notPayable(c, h.unlessDeleted(c, err), req.PaymentID)
	}
	amount := order.Money{Amount: req.Amount.Amount, Currency: req.Amount.Currency}
	if err := o.CheckPaidAmount(amount); err != nil {
		h.log.Error("payment approved for another amount than the order's total; not marking it paid",
			"request_id", requestID(c), "order", o.ID, "payment", req.PaymentID, "charged", amount.Amount, "total", o.Total.Amount)
		return err
	}
	paid, changed, err := h.store.SettlePaid(ctx, o.ID, req.PaymentID, h.auditEntry(c, order.ActionOrderPaymentSettled, o.ID,
		map[string]any{"number": o.Number, "paymentId": req.PaymentID, "by": "payment notice", "amount": toMoney(amount)}))
	if err != nil {
		return h.notPayable(c, h.unlessDeleted(c, err), req.PaymentID)
	}
	if changed {
		h.log.Warn("order paid by an approval its checkout never recorded", "request_id", requestID(c),
			"order", o.ID, "payment", req.PaymentID)
	}
	return c.JSON(toOrder(paid))
}

// refundReport is the payment service's report of a refund. Amount is the total refunded
// so far on the payment (see order.Order.ApplyRefund).
type refundReport struct {
	PaymentID string `json:"paymentId"`
	// RefundID names the refund that caused the report; it is kept in the audit log.
	RefundID      string `json:"refundId"`
	Amount        *int64 `json:"amount"`
	FullyRefunded *bool  `json:"fullyRefunded"`
}

// recordRefund applies the payment service's notice of a refund. The report carries the
// payment's refunded total, so a repeated or overtaken notice changes nothing and answers
// 200; a change is audited in the same transaction.
func (h *handlers) recordRefund(c *fiber.Ctx) error {
	var req refundReport
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var missing []validation.FieldError
	if req.Amount == nil {
		missing = append(missing, validation.FieldError{Field: "amount", Message: "is required"})
	}
	if req.FullyRefunded == nil {
		missing = append(missing, validation.FieldError{Field: "fullyRefunded", Message: "is required"})
	}
	if len(missing) > 0 {
		return validation.New(missing...)
	}
	var o order.Order
	err := h.store.Tx(c.UserContext(), func(tx *store.Store) error {
		var changed bool
		var err error
		o, changed, err = tx.RecordRefund(c.UserContext(), c.Params("id"), req.PaymentID, *req.Amount, *req.FullyRefunded)
		if err != nil || !changed {
			return err
		}
		return tx.Audit(c.UserContext(), h.auditEntry(c, order.ActionOrderRefund, o.ID, map[string]any{
			"number": o.Number, "paymentId": req.PaymentID, "refundId": req.RefundID, "refunded": toMoney(o.Refunded), "status": string(o.Status),
		}))
	})
	if err != nil {
		return h.unlessDeleted(c, err)
	}
	return c.JSON(toOrder(o))
}
