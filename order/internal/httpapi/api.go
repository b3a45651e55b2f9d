// Package httpapi is the order service's HTTP adapter: the route table that gives every
// endpoint its authorisation policy, the handlers, the JSON shapes of requests and
// answers, and the table from domain errors to statuses.
//
// Handlers trust nothing in a request body that the server decides itself: the owner of
// an order is the token's subject, prices come from the catalog, ids and statuses are the
// server's. Request bodies are decoded into small request types that have no such fields,
// so there is nothing for a client to assign.
package httpapi

import (
	"log/slog"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
)

// Deps is what the API needs from the rest of the service.
type Deps struct {
	Store    *store.Store
	Payments *payment.Client
	// Authenticate verifies the bearer token of every non-public route (authn middleware).
	Authenticate fiber.Handler
	Logger       *slog.Logger
	// Ready are the readiness checks behind /readyz.
	Ready map[string]server.Check
	// MetricsFrom may read /metrics (server.Options); empty: loopback only.
	MetricsFrom []netip.Prefix
	// Rules bound what shoppers may order and hold unpaid; zero: order.DefaultRules.
	Rules order.Rules
}

// API is the order service's HTTP API.
type API struct {
	// App is the Fiber app: the platform's middleware and probes, then every route of
	// Routes behind its policy.
	App *fiber.App
	// Routes is the route table App was built from.
	Routes []authz.Route
}

// New builds the API.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Rules == (order.Rules{}) {
		d.Rules = order.DefaultRules
	}
	h := &handlers{store: d.Store, payments: d.Payments, log: d.Logger, rules: d.Rules}
	app := server.New(server.Options{Name: "order", Logger: d.Logger, Errors: errorMap, Ready: d.Ready, MetricsFrom: d.MetricsFrom})
	app.Use(noStore, h.translateErrors)
	routes := h.routes()
	authz.Mount(app, d.Authenticate, routes)
	return &API{App: app, Routes: routes}
}

// noStore keeps answers with personal or admin data out of browser and shared caches;
// only the public catalog may be cached. It is set before the handler runs, so error
// answers carry it too.
func noStore(c *fiber.Ctx) error {
	if !strings.HasPrefix(c.Path(), "/api/public/") {
		c.Set(fiber.HeaderCacheControl, "no-store")
	}
	return c.Next()
}

// handlers holds what the handlers share.
type handlers struct {
	store    *store.Store
	payments *payment.Client
	log      *slog.Logger
	rules    order.Rules
}

// principal is the verified caller. Mount runs authentication before every non-public
// handler, so it is always there where a handler asks for it.
func principal(c *fiber.Ctx) *authn.Principal {
	p, _ := authn.PrincipalFrom(c)
	return p
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(problem.RequestIDKey).(string)
	return id
}
