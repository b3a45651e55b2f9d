package httpapi

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
	"example.com/shop/platform/svcauth"
)

// InternalRoutes is the internal listener's route table. A test fails if the internal app
// serves a route that is not in it. The order service is the only caller: its
// reconciliation asks how a charge ended.
func (h *Handlers) InternalRoutes() []svcauth.Route {
	return []svcauth.Route{
		{Method: fiber.MethodGet, Path: "/internal/payments", Callers: []string{mtls.ID("order-service")}, Handler: h.paymentsOfOrder},
	}
}

// InternalOptions are what NewInternal needs.
type InternalOptions struct {
	Service *payment.Service
	// Authenticate verifies the bearer token (authn.Verifier.Middleware), with the
	// payment service's own name among the accepted audiences.
	Authenticate fiber.Handler
	Logger       *slog.Logger
}

// NewInternal returns the app of the internal listener, which must be served behind
// mtls: every request has come with a client certificate from the internal CA. Each route
// then checks, in this order: the certificate's identity against the route's callers
// (403), the bearer token (401), its SERVICE role (403), and that the token was issued
// to the same service the certificate names (403); see svcauth.Guard.
func NewInternal(o InternalOptions) *fiber.App {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	app := server.New(server.Options{Name: "payment-internal", Logger: o.Logger, Errors: Errors})
	app.Use(func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Next()
	})
	h := &Handlers{svc: o.Service, log: o.Logger}
	svcauth.Mount(app, o.Authenticate, h.InternalRoutes())
	return app
}

// paymentsOfOrder answers the order service's reconciliation: every payment of one order,
// newest first. The order service decides from them whether an order whose checkout lost
// its answer was paid.
func (h *Handlers) paymentsOfOrder(c *fiber.Ctx) error {
	orderID := c.Query("orderId")
	if orderID == "" {
		return problem.Invalid("invalid query parameters", problem.FieldError{Field: "orderId", Message: "is required"})
	}
	ps, err := h.svc.PaymentsOfOrder(c.UserContext(), orderID)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(toPaymentsJSON(ps))
}
