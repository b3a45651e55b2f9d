package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/authz"
)

// Realm roles and scopes the table refers to.
const (
	RoleUser       = "USER"
	ScopeAdminRead = "admin:read"
)

// routes is THE route table of the order service, read like a checklist: method, path,
// who may call it, handler. authz.Mount refuses a route without a policy, and
// TestEveryRegisteredRouteIsInTheTable fails if anything reaches the app around this
// table. api/openapi.yaml describes the same routes (TestOpenAPIMatchesTheRouteTable).
func (h *handlers) routes() []authz.Route {
	var (
		shopper   = authz.Role(RoleUser)
		admin     = authz.Role(authz.RoleAdmin)
		adminRead = authz.Scope(ScopeAdminRead)
		// ownsOrder loads the order once, answers 404 to anyone but its owner or an admin,
		// and hands the loaded order to the handler.
		ownsOrder = authz.AdminOrOwner(h.loadOrder)
	)
	return []authz.Route{
		route(fiber.MethodGet, "/api/public/products", authz.Public, h.listProducts),
		route(fiber.MethodGet, "/api/public/products/:id", authz.Public, h.getProduct),

		route(fiber.MethodPost, "/api/admin/products", admin, h.createProduct),
		route(fiber.MethodPut, "/api/admin/products/:id", admin, h.updateProduct),
		route(fiber.MethodDelete, "/api/admin/products/:id", admin, h.retireProduct),

		route(fiber.MethodPost, "/api/orders", shopper, h.createOrder),
		route(fiber.MethodGet, "/api/orders", shopper, h.listMyOrders),
		route(fiber.MethodGet, "/api/orders/admin/all", adminRead, h.listAllOrders),
		route(fiber.MethodGet, "/api/orders/admin/audit", admin, h.listAudit),
		route(fiber.MethodGet, "/api/orders/:id", ownsOrder, h.getOrder),
		route(fiber.MethodPost, "/api/orders/:id/cancel", ownsOrder, h.cancelOrder),
		route(fiber.MethodPost, "/api/orders/:id/pay", ownsOrder, h.payOrder),
		route(fiber.MethodDelete, "/api/orders/:id", ownsOrder, h.deleteOrder),
		// The payment service's notices (paid, refunded) have no user behind them: they go
		// to the internal listener (internal.go), never to this table.
	}
}

// route keeps the table above one line per route.
func route(method, path string, policy authz.Policy, handler fiber.Handler) authz.Route {
	return authz.Route{Method: method, Path: path, Policy: policy, Handler: handler}
}

// orderKey is where loadOrder leaves the order for the handler.
const orderKey = "order.order"

// loadOrder is the authz.Owner of the order routes. A missing order is order.ErrNotFound,
// which translateErrors answers exactly as AdminOrOwner answers someone else's order.
func (h *handlers) loadOrder(c *fiber.Ctx) (string, error) {
	o, err := h.store.Order(c.UserContext(), c.Params("id"))
	if err != nil {
		return "", err
	}
	c.Locals(orderKey, o)
	return o.UserID, nil
}

// loadedOrder is the order loadOrder found for this request.
func loadedOrder(c *fiber.Ctx) order.Order {
	o, _ := c.Locals(orderKey).(order.Order)
	return o
}
