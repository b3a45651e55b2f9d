package web

import "github.com/gofiber/fiber/v2"

// access says who may use a route.
type access int

const (
	// public: anyone, logged in or not.
	public access = iota + 1
	// shopper: any logged-in user; anonymous users are sent to log in and brought back.
	shopper
	// admin: logged-in users with the ADMIN role, whose token carries admin:read (got by
	// step-up when missing); others get the 403 page.
	admin
)

func (a access) String() string {
	switch a {
	case public:
		return "public"
	case shopper:
		return "shopper"
	case admin:
		return "admin"
	}
	return "none"
}

// route is one line of the route table.
type route struct {
	method  string
	path    string
	access  access
	handler fiber.Handler
}

// routes is every page and form of the webapp, with who may use it. Every POST is a form
// protected by the CSRF middleware; no GET changes anything but the session's bookkeeping
// (a login in progress, flash messages).
func (h *handlers) routes() []route {
	const get, post = fiber.MethodGet, fiber.MethodPost
	return []route{
		{get, "/", public, h.catalog},
		{get, "/products/:id", public, h.product},
		{get, "/cart", public, h.cart},
		{post, "/cart/items", public, h.addToCart},
		{post, "/cart/items/:id", public, h.updateCart},

		{get, "/login", public, h.login},
		{get, "/auth/callback", public, h.callback},
		{post, "/logout", public, h.logout},

		{get, "/checkout", shopper, h.checkoutPage},
		{post, "/checkout", shopper, h.checkout},
		{get, "/orders", shopper, h.orders},
		{get, "/orders/:id", shopper, h.order},
		{get, "/orders/:id/pay", shopper, h.payPage},
		{post, "/orders/:id/pay", shopper, h.pay},
		{post, "/orders/:id/cancel", shopper, h.cancel},

		{get, "/admin", admin, h.adminOrders},
		{get, "/admin/orders/:id", admin, h.adminOrder},
		{post, "/admin/orders/:id/refund", admin, h.adminRefund},
		{post, "/admin/orders/:id/delete", admin, h.adminDelete},
		{get, "/admin/products", admin, h.adminProducts},
		{get, "/admin/products/new", admin, h.adminNewProduct},
		{post, "/admin/products", admin, h.adminCreateProduct},
		{get, "/admin/products/:id/edit", admin, h.adminEditProduct},
		{post, "/admin/products/:id", admin, h.adminUpdateProduct},
		{post, "/admin/products/:id/retire", admin, h.adminRetireProduct},
		{get, "/admin/audit", admin, h.adminAudit},
	}
}
