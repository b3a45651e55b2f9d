package web_test

import (
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"example.com/shop/webapp/internal/app"
	"example.com/shop/webapp/internal/oidctest"
)

// TestAPIErrorPages: each kind of API failure becomes a page that says what to do, and
// nothing is lost.
func TestAPIErrorPages(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter int
		body       map[string]any
		wantStatus int
		say        []string
	}{
		{"forbidden", 403, 0, nil, 403, []string{"Not allowed", "not allowed to do that"}},
		{"not found", 404, 0, nil, 404, []string{"Not found"}},
		{"conflict", 409, 0, map[string]any{"detail": "the order changed meanwhile"}, 409, []string{"Please check", "the order changed meanwhile"}},
		{"invalid", 422, 0, map[string]any{"detail": "invalid filter", "errors": []map[string]string{{"field": "status", "message": "unknown status"}}}, 422, []string{"invalid filter", "unknown status"}},
		{"rate limited", 429, 7, nil, 429, []string{"Slow down", `id="retry-after"`, "wait 7 seconds"}},
		{"server error", 500, 0, map[string]any{"detail": "pq: secret internals"}, 503, []string{"Please try again", "Nothing was lost", "Try again"}},
		{"bad gateway", 502, 0, nil, 503, []string{"Please try again"}},
		{"gateway timeout", 504, 0, nil, 503, []string{"Please try again"}},
	}
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.api.failNext("GET /api/orders", tc.status, tc.retryAfter, tc.body)
			r := b.get("/orders")
			mustStatus(t, r, tc.wantStatus)
			mustContain(t, r, tc.say...)
			if strings.Contains(r.body, "pq: secret internals") {
				t.Error("a server error's detail reached the page")
			}
			if tc.retryAfter > 0 && r.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
			mustContain(t, b.get("/cart"), "Gopher mug")
			if !loggedIn(t, b) {
				t.Fatal("an API error logged the user out")
			}
		})
	}

	t.Run("unauthorized", func(t *testing.T) {
		e.api.failNext("GET /api/orders", 401, 0, nil)
		r := b.get("/orders")
		mustStatus(t, r, http.StatusSeeOther)
		if r.location() != "/login?next=%2Forders" {
			t.Fatalf("401 sent the user to %q", r.location())
		}
		mustContain(t, b.get("/cart"), "Gopher mug", "Please log in again", `role="alert"`)
	})
}

// TestGatewayDown: no gateway at all is a "try again" page, the cart intact.
func TestGatewayDown(t *testing.T) {
	e := newEnv(t, func(c *app.Config) { c.GatewayURL = "http://127.0.0.1:1" })
	b := e.browser()
	r := b.get("/")
	mustStatus(t, r, http.StatusServiceUnavailable)
	mustContain(t, r, "Please try again", "cart is kept")
	mustContain(t, b.get("/cart"), "Your cart is empty")
}

// TestCheckoutDoubleSubmit: the same checkout form sent twice creates one order, and both
// answers lead to it.
func TestCheckoutDoubleSubmit(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	form := url.Values{"idempotencyKey": {formValue(t, b.get("/checkout").body, "idempotencyKey")}}
	first := b.post("/checkout", form)
	second := b.post("/checkout", form)
	mustStatus(t, first, http.StatusSeeOther)
	mustStatus(t, second, http.StatusSeeOther)
	if first.location() != second.location() {
		t.Fatalf("two submits went to %q and %q", first.location(), second.location())
	}
	e.api.mu.Lock()
	n := len(e.api.orders)
	e.api.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d orders", n)
	}
	// A new form is a new order.
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	third := b.post("/checkout", url.Values{"idempotencyKey": {formValue(t, b.get("/checkout").body, "idempotencyKey")}})
	if third.location() == first.location() {
		t.Fatal("a new checkout form reused the old order")
	}
}

// TestCheckoutConflict: out of stock is explained on the checkout page; the cart stays.
func TestCheckoutConflict(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {teeID}, "quantity": {"9"}}), http.StatusSeeOther)
	r := b.post("/checkout", url.Values{"idempotencyKey": {formValue(t, b.get("/checkout").body, "idempotencyKey")}})
	mustStatus(t, r, http.StatusConflict)
	mustContain(t, r, "Shop T-shirt is out of stock", `id="place-order"`)
	mustContain(t, b.get("/cart"), "Shop T-shirt", `value="9"`)
}

// TestDeclinedThenPaid: a declined card says why and leaves the order payable; a retry
// with a good card pays it, once.
func TestDeclinedThenPaid(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	order := placeOrder(t, b)
	pay := "/orders/" + order + "/pay"
	card := func(number, key string) url.Values {
		return url.Values{"number": {number}, "expMonth": {"01"}, "expYear": {"2031"}, "cvc": {"123"}, "holder": {"Alice"}, "idempotencyKey": {key}}
	}

	r := b.post(pay, card("4000 0000 0000 9995", formValue(t, b.get(pay).body, "idempotencyKey")))
	mustStatus(t, r, http.StatusPaymentRequired)
	mustContain(t, r, `role="alert"`, "Your card was declined.", "There is not enough money available on it", `id="pay"`)
	if strings.Contains(r.body, "insufficient_funds") {
		t.Fatal("the decline shows the payment service's machine reason")
	}
	// The test-card table lists the number; the form must not hold it (nor the CVC).
	if regexp.MustCompile(`name="(number|cvc)"[^>]*value=`).MatchString(r.body) || strings.Contains(r.body, "4000000000009995") {
		t.Fatal("the card number or CVC came back in the form")
	}
	mustContain(t, b.get("/orders/"+order), `data-status="pending"`, `id="pay-order"`)

	r = b.post(pay, card("4111 1111 1111 1112", formValue(t, r.body, "idempotencyKey")))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r, "invalid card", "not a valid card number")

	r = b.post(pay, card("1234", formValue(t, r.body, "idempotencyKey")))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r, "Enter the card number")

	r = b.post(pay, card("4000 0000 0000 0119", formValue(t, r.body, "idempotencyKey")))
	mustStatus(t, r, http.StatusServiceUnavailable)

	key := formValue(t, b.get(pay).body, "idempotencyKey")
	mustStatus(t, b.post(pay, card("4242424242424242", key)), http.StatusSeeOther)
	mustStatus(t, b.post(pay, card("4242424242424242", key)), http.StatusSeeOther) // double submit
	mustContain(t, b.get("/orders/"+order), `data-status="paid"`)
	// A stale form (another tab) after the order is paid: told it is paid, nothing charged.
	mustStatus(t, b.post(pay, card("4242424242424242", "another-tab-key")), http.StatusSeeOther)
	mustContain(t, b.get("/orders/"+order), "This order is paid.")
	approved := 0
	e.api.mu.Lock()
	for _, p := range e.api.payments {
		if p.OrderID == order && p.Status == "approved" {
			approved++
		}
	}
	e.api.mu.Unlock()
	if approved != 1 {
		t.Fatalf("%d approved payments", approved)
	}
	for _, c := range e.api.callsTo("POST /api/orders/" + order + "/pay") {
		if c.IdempotencyKey == "" {
			t.Fatal("a charge without idempotency key")
		}
	}
	// Paid: the payment page sends back to the order.
	mustStatus(t, b.get(pay), http.StatusSeeOther)
}

// TestCancel: a pending order can be cancelled once.
func TestCancel(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	order := placeOrder(t, b)
	mustStatus(t, b.post("/orders/"+order+"/cancel", nil), http.StatusSeeOther)
	mustContain(t, b.get("/orders/"+order), `data-status="cancelled"`, "Your order is cancelled.")
	mustStatus(t, b.post("/orders/"+order+"/cancel", nil), http.StatusSeeOther)
	r := b.get("/orders/" + order)
	mustContain(t, r, "can no longer be cancelled")
	if strings.Contains(r.body, `id="cancel-order"`) {
		t.Fatal("a cancelled order offers cancelling")
	}
}

// TestCart: quantities are bounded, removal works, unknown products are refused.
func TestCart(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, q := range []string{"0", "-1", "11", "x"} {
		mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {q}}), http.StatusSeeOther)
	}
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {"0b6d6c5e-1c1a-4a43-9a6e-0000000000ff"}}), http.StatusSeeOther)
	r := b.get("/cart")
	mustContain(t, r, "Your cart is empty", "between 1 and 10", "no longer available")
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {"3"}}), http.StatusSeeOther)
	mustStatus(t, b.post("/cart/items/"+mugID, url.Values{"quantity": {"5"}}), http.StatusSeeOther)
	mustContain(t, b.get("/cart"), `value="5"`, "€64.95")
	mustStatus(t, b.post("/cart/items/"+mugID, url.Values{"quantity": {"0"}}), http.StatusSeeOther)
	mustContain(t, b.get("/cart"), "Your cart is empty")
}

// TestCartAddsFromTabsAtOnceAreAllKept: a shopper adding from several tabs at the same
// moment keeps every item; each request loads and saves the whole session, so without the
// per-session lock the last save would win.
func TestCartAddsFromTabsAtOnceAreAllKept(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {"1"}}), http.StatusSeeOther)
	const tabs = 6
	statuses := make([]int, tabs)
	var wg sync.WaitGroup
	for i := range tabs {
		tab := &browser{e: e, cookies: maps.Clone(b.cookies), referer: b.referer}
		form := url.Values{"productId": {mugID}, "quantity": {"1"}, "_csrf": {b.csrf()}}
		wg.Go(func() { statuses[i] = tab.postRaw("/cart/items", form).StatusCode })
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusSeeOther {
			t.Fatalf("tab %d: status %d", i, st)
		}
	}
	mustContain(t, b.get("/cart"), `value="`+strconv.Itoa(1+tabs)+`"`)
}
