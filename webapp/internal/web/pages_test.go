package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/oidctest"
)

// placeOrder logs nothing in: b must be logged in. It puts a mug in the cart, checks out
// and returns the new order's id.
func placeOrder(t *testing.T, b *browser) string {
	t.Helper()
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {"1"}}), http.StatusSeeOther)
	r := b.get("/checkout")
	mustStatus(t, r, http.StatusOK)
	r = b.post("/checkout", url.Values{"idempotencyKey": {formValue(t, r.body, "idempotencyKey")}})
	mustStatus(t, r, http.StatusSeeOther)
	id := strings.TrimSuffix(strings.TrimPrefix(r.location(), "/orders/"), "/pay")
	if len(id) != 36 {
		t.Fatalf("checkout went to %q", r.location())
	}
	return id
}

// TestEveryPageByRole opens every page as an anonymous visitor, a shopper and an admin.
// Anonymous users are sent to log in (and brought back), shoppers get 403 on the admin
// console without the API or Keycloak ever being asked, admins see everything.
func TestEveryPageByRole(t *testing.T) {
	e := newEnv(t)
	alice := e.browser()
	alice.loginAs(oidctest.Alice)
	order := placeOrder(t, alice)
	ada := e.browser()
	ada.adminLogin()

	const (
		ok    = http.StatusOK
		login = http.StatusSeeOther
		no    = http.StatusForbidden
	)
	pages := []struct {
		path                 string
		anon, shopper, admin int
		mustSay              string // on the 200 page
	}{
		{"/", ok, ok, ok, "Gopher mug"},
		{"/products/" + mugID, ok, ok, ok, "350 ml"},
		{"/cart", ok, ok, ok, "Your cart"},
		{"/orders", login, ok, ok, "My orders"},
		{"/orders/" + order, login, ok, ok, "<h1>Order 1000"}, // numbered by the fake from 10001
		{"/orders/" + order + "/pay", login, ok, ok, "Test cards"},
		{"/admin", login, no, ok, "All orders"},
		{"/admin?status=pending&customer=alice", login, no, ok, order[:8]},
		{"/admin/orders/" + order, login, no, ok, "Delete order"},
		{"/admin/products", login, no, ok, "New product"},
		{"/admin/products/new", login, no, ok, "New product"},
		{"/admin/products/" + mugID + "/edit", login, no, ok, "Edit product"},
		{"/admin/audit", login, no, ok, "Audit log"},
	}
	who := []struct {
		name string
		b    *browser
		want func(int, int, int) int
	}{
		{"anonymous", e.browser(), func(a, _, _ int) int { return a }},
		{"shopper", alice, func(_, s, _ int) int { return s }},
		{"admin", ada, func(_, _, a int) int { return a }},
	}
	for _, w := range who {
		for _, p := range pages {
			want := w.want(p.anon, p.shopper, p.admin)
			t.Run(w.name+" "+p.path, func(t *testing.T) {
				before := len(e.api.callsTo("GET /api/orders/admin")) + len(e.api.callsTo("GET /api/payments/admin"))
				r := w.b.get(p.path)
				mustStatus(t, r, want)
				if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q", cc)
				}
				switch want {
				case ok:
					mustContain(t, r, p.mustSay)
				case login:
					if r.location() != "/login?next="+url.QueryEscape(p.path) {
						t.Errorf("sent to %q, want a login that comes back", r.location())
					}
				case no:
					mustContain(t, r, "Not allowed")
					if strings.Contains(r.body, order) && p.path != "/admin/orders/"+order {
						t.Error("the 403 page shows order data")
					}
					after := len(e.api.callsTo("GET /api/orders/admin")) + len(e.api.callsTo("GET /api/payments/admin"))
					if after != before {
						t.Error("a shopper's visit reached the admin API")
					}
				}
			})
		}
	}
	steps := 0
	for _, q := range e.kc.AuthorizationRequests() {
		if strings.Contains(q.Get("scope"), "admin:read") {
			steps++
		}
	}
	if steps != 1 {
		t.Errorf("%d authorization requests asked for admin:read; only the admin's one step-up may", steps)
	}
	// Shoppers cannot force a step-up either: Keycloak would count the refusal as a failed login.
	r := alice.get("/login?step=admin&next=/admin")
	mustStatus(t, r, http.StatusForbidden)
	if n := len(e.kc.AuthorizationRequests()); n != 3 {
		t.Errorf("%d authorization requests, want 3 (two logins and one step-up)", n)
	}
}

// TestAdminFormsRefuseShoppers posts every admin form as a shopper: 403, nothing reaches
// the API.
func TestAdminFormsRefuseShoppers(t *testing.T) {
	e := newEnv(t)
	alice := e.browser()
	alice.loginAs(oidctest.Alice)
	order := placeOrder(t, alice)
	for _, path := range []string{
		"/admin/orders/" + order + "/refund", "/admin/orders/" + order + "/delete",
		"/admin/products", "/admin/products/" + mugID, "/admin/products/" + mugID + "/retire",
	} {
		r := alice.post(path, url.Values{"name": {"x"}, "price": {"1"}, "currency": {"EUR"}, "stock": {"1"}, "idempotencyKey": {"k"}})
		mustStatus(t, r, http.StatusForbidden)
	}
	for _, prefix := range []string{"POST /api/payments", "DELETE /api/orders", "POST /api/admin", "PUT /api/admin", "DELETE /api/admin"} {
		if n := len(e.api.callsTo(prefix)); n != 0 {
			t.Errorf("%d calls to %s", n, prefix)
		}
	}
}

// TestOthersOrdersAreNotFound: a shopper opening another shopper's order sees "not found".
func TestOthersOrdersAreNotFound(t *testing.T) {
	e := newEnv(t)
	alice := e.browser()
	alice.loginAs(oidctest.Alice)
	order := placeOrder(t, alice)
	bob := e.browser()
	bob.loginAs(oidctest.Bob)
	for _, path := range []string{"/orders/" + order, "/orders/" + order + "/pay"} {
		r := bob.get(path)
		mustStatus(t, r, http.StatusNotFound)
		mustContain(t, r, "Not found")
	}
	mustStatus(t, bob.post("/orders/"+order+"/cancel", nil), http.StatusNotFound)
	// Ids that are not ids never reach the API.
	before := len(e.api.callsTo("GET /api/orders"))
	mustStatus(t, bob.get("/orders/..%2Fadmin%2Fall"), http.StatusNotFound)
	if len(e.api.callsTo("GET /api/orders")) != before {
		t.Error("a malformed id reached the API")
	}
}

var inlineHandler = regexp.MustCompile(`\son[a-z]+=`)

// TestSecurityHeaders: every page carries the headers, and no page has any script.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	for _, path := range []string{"/", "/cart", "/orders", "/nope", "/products/" + mugID} {
		r := b.get(path)
		csp := r.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self' " + strings.TrimSuffix(e.kc.URL, "/realms/shop")} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows script: %q", path, csp)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if strings.Contains(strings.ToLower(r.body), "<script") || inlineHandler.MatchString(r.body) {
			t.Errorf("%s: the page has script", path)
		}
	}
	css := b.get("/static/app.css")
	mustStatus(t, css, http.StatusOK)
	if !strings.Contains(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("stylesheet headers %v", css.Header)
	}
	mustStatus(t, b.get("/nope"), http.StatusNotFound)
}
