package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/oidctest"
)

// TestShopperBuysSomething is the story: browse, fill the cart anonymously, log in
// at checkout and come back to it with the cart intact, place the order, pay with the
// approving test card, see it paid, log out.
func TestShopperBuysSomething(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	r := b.get("/")
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, "Gopher mug", "€12.99", `name="add-to-cart"`, `id="login"`, "Sold out")

	r = b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {"2"}, "return": {"/"}})
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/" {
		t.Fatalf("add to cart went to %q", r.location())
	}
	r = b.get("/")
	mustContain(t, r, `role="status"`, "Added Gopher mug to your cart.", `id="cart-count" aria-label="2 items">2<`)

	r = b.get("/cart")
	mustContain(t, r, "Gopher mug", "€25.98", `id="checkout"`)

	// Checkout needs a login, which comes back to checkout.
	r = b.get("/checkout")
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/login?next=%2Fcheckout" {
		t.Fatalf("checkout sent an anonymous user to %q", r.location())
	}
	r = b.login(oidctest.Alice, "/checkout")
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/checkout" {
		t.Fatalf("after login: %q", r.location())
	}
	r = b.get("/checkout")
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, "Gopher mug", "€25.98", `id="place-order"`, "Alice Shopper", `id="logout"`)
	key := formValue(t, r.body, "idempotencyKey")

	r = b.post("/checkout", url.Values{"idempotencyKey": {key}})
	mustStatus(t, r, http.StatusSeeOther)
	orders := e.api.callsTo("POST /api/orders")
	if len(orders) != 1 || orders[0].IdempotencyKey != key || !strings.HasPrefix(orders[0].Auth, "DPoP ") || orders[0].RequestID == "" {
		t.Fatalf("order calls: %+v", orders)
	}
	payPath := r.location()
	r = b.get(payPath)
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, "Your order is placed", `id="pay"`, `name="number"`, `name="expMonth"`, `name="expYear"`, `name="cvc"`, `name="holder"`,
		"4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 9995", "4000 0000 0000 0119", `id="cart-count" aria-label="0 items"`)

	r = b.post(payPath, url.Values{"idempotencyKey": {formValue(t, r.body, "idempotencyKey")},
		"number": {"4242 4242 4242 4242"}, "expMonth": {"12"}, "expYear": {"2031"}, "cvc": {"123"}, "holder": {"Alice Shopper"}})
	mustStatus(t, r, http.StatusSeeOther)
	r = b.get(r.location())
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, "Payment approved", `data-status="paid"`, "visa ending in 4242")
	if strings.Contains(r.body, "4242 4242 4242 4242") {
		t.Fatal("the card number is shown back")
	}

	r = b.get("/orders")
	mustContain(t, r, `data-status="paid"`, "data-order-id=")

	r = b.post("/logout", nil)
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, `<form id="end-session" method="post" action="`+e.kc.URL+`/protocol/openid-connect/logout">`,
		`name="post_logout_redirect_uri" value="`+publicURL+`/"`, `name="id_token_hint"`)
	if _, ok := b.cookies["shop_session"]; ok {
		t.Fatal("the session cookie survived logout")
	}
	r = b.get("/orders")
	mustStatus(t, r, http.StatusSeeOther)
}
