package httpapi

import (
	"log/slog"
	"slices"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
)

// InternalRoute is one line of the internal listener's route table: the calls other
// services make with no user behind them. Callers names the services allowed to make it;
// each must prove it twice, with its certificate (SPIFFE id spiffe://shop/<name>) and
// with its own client-credentials token (client <name>, realm role SERVICE).
type InternalRoute struct {
	Method  string
	Path    string
	Callers []string
	Handler fiber.Handler
}

// Services that call the payment service's internal listener, by their certificate and
// Keycloak client name (the same name on purpose: see sameService).
const orderService = "order-service"

// InternalRoutes is the internal listener's route table. A test fails if the internal app
// serves a route that is not in it.
func (h *Handlers) InternalRoutes() []InternalRoute {
	return []InternalRoute{
		{Method: fiber.MethodGet, Path: "/internal/payments", Callers: []string{orderService}, Handler: h.paymentsOfOrder},
	}
}

// servicePolicy is the token policy of every internal route: a service account's token.
// A shopper's or an admin's token, whatever its audience, is refused with 403.
var servicePolicy = authz.Role(payment.RoleService)

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
// to the same service the certificate names (403).
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
	for _, rt := range h.InternalRoutes() {
		ids := make([]string, len(rt.Callers))
		for i, name := range rt.Callers {
			ids[i] = devca.ID(name)
		}
		app.Add(rt.Method, rt.Path, mtls.Allow(ids...), o.Authenticate, servicePolicy.Handler(), sameService, rt.Handler)
	}
	return app
}

// sameService admits a request only when its token was issued to the service its
// certificate names: the token's client (azp) order-service with the certificate
// spiffe://shop/order-service, and so on.
//
// Either credential alone can leak: a token sits in memory and in transit for minutes, a
// key on a disk. Binding them means that a thief needs both, of the same service: an
// order-service token replayed from another workload's connection is refused, and so is
// a valid certificate carrying a token some other service was given. Each route's caller
// list then holds for the token as well as for the certificate.
func sameService(c *fiber.Ctx) error {
	p, ok := authn.PrincipalFrom(c)
	if !ok || p.ClientID == "" || !slices.Contains(mtls.PeerIDs(c), devca.ID(p.ClientID)) {
		return problem.Forbidden("the token was not issued to the service this certificate belongs to")
	}
	return c.Next()
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
