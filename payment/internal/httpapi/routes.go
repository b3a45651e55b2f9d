// Package httpapi is the payment service's HTTP API: the route table with each route's
// policy, the handlers, and the one table from domain errors to statuses.
package httpapi

import (
	"log/slog"
	"net/netip"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
)

// The policies of the payment routes, named so the table below reads as a checklist.
var (
	// shopperOrAdmin may charge: a shopper pays their own order, an admin may pay any.
	shopperOrAdmin = authz.AnyOf(authz.Role(payment.RoleUser), authz.Role(authz.RoleAdmin))
	shopper        = authz.Role(payment.RoleUser)
	admin          = authz.Role(authz.RoleAdmin)
	adminReader    = authz.Scope("admin:read")
)

// Routes is the payment service's route table: every route, its policy and its handler.
// A test fails if the app serves a route that is not in it.
func (h *Handlers) Routes() []authz.Route {
	return []authz.Route{
		{Method: fiber.MethodPost, Path: "/api/payments", Policy: shopperOrAdmin, Handler: h.charge},
		{Method: fiber.MethodGet, Path: "/api/payments", Policy: shopper, Handler: h.listMine},
		{Method: fiber.MethodGet, Path: "/api/payments/admin/all", Policy: adminReader, Handler: h.listAll},
		{Method: fiber.MethodGet, Path: "/api/payments/admin/audit", Policy: admin, Handler: h.audit},
		{Method: fiber.MethodGet, Path: "/api/payments/:id", Policy: authz.AdminOrOwner(h.ownsPayment), Handler: h.get},
		{Method: fiber.MethodPost, Path: "/api/payments/:id/refunds", Policy: admin, Handler: h.refund},
	}
}

// Errors maps the domain's errors to statuses, for the one ErrorHandler.
var Errors = problem.Map{
	{Err: payment.ErrNotFound, Status: fiber.StatusNotFound},
	{Err: payment.ErrUnknownOrder, Status: fiber.StatusUnprocessableEntity},
	{Err: payment.ErrKeyReused, Status: fiber.StatusUnprocessableEntity},
	{Err: payment.ErrOrderNotPayable, Status: fiber.StatusConflict},
	{Err: payment.ErrOrderPaid, Status: fiber.StatusConflict},
	{Err: payment.ErrPaymentInProgress, Status: fiber.StatusConflict},
	{Err: payment.ErrRequestInProgress, Status: fiber.StatusConflict},
	{Err: payment.ErrNotRefundable, Status: fiber.StatusConflict},
	{Err: payment.ErrForbidden, Status: fiber.StatusForbidden},
	{Err: payment.ErrSessionEnded, Status: fiber.StatusUnauthorized},
	{Err: payment.ErrOrderServiceTimeout, Status: fiber.StatusGatewayTimeout},
	{Err: payment.ErrOrderServiceUnavailable, Status: fiber.StatusBadGateway},
}

// Options are what New needs.
type Options struct {
	Service *payment.Service
	// Authenticate verifies the bearer token (authn.Verifier.Middleware).
	Authenticate fiber.Handler
	Logger       *slog.Logger
	// Ready are the readiness checks behind /readyz.
	Ready map[string]server.Check
	// MetricsFrom may read /metrics (server.Options); empty: loopback only.
	MetricsFrom []netip.Prefix
}

// New returns the payment service's app: the platform server with the route table mounted.
func New(o Options) *fiber.App {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	app := server.New(server.Options{Name: "payment", Logger: o.Logger, Errors: Errors, Ready: o.Ready, MetricsFrom: o.MetricsFrom})
	// Payment data is personal and changes with every refund: no cache keeps a copy.
	app.Use("/api", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Next()
	})
	h := &Handlers{svc: o.Service, log: o.Logger}
	authz.Mount(app, o.Authenticate, h.Routes())
	return app
}
