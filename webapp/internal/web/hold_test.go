package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/oidctest"
)

// paymentHold is the order service's default hold, which the fake API gives its orders.
const paymentHold = 15 * time.Minute

// change edits an order of the fake API as the order service would.
func (f *fakeAPI) change(id string, edit func(o *gateway.Order)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orders {
		if o.ID == id {
			edit(o)
		}
	}
}

// TestTheHoldIsShownThenTheExpiry: a new order says in words how long is left to pay it;
// past the deadline the page says time is up; once expired, the order page says what
// happened and what to do, and there is nothing left to pay.
func TestTheHoldIsShownThenTheExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	id := placeOrder(t, b)

	for _, path := range []string{"/orders/" + id + "/pay", "/orders/" + id} {
		r := b.get(path)
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r, `id="pay-within"`, "Pay within 14 minutes", "go back on sale")
	}

	e.api.change(id, func(o *gateway.Order) { past := time.Now().Add(-time.Second); o.PaymentDueAt = &past })
	r := b.get("/orders/" + id)
	mustContain(t, r, `id="time-up"`, "The time to pay for this order is up")
	if strings.Contains(r.body, `id="pay-order"`) || strings.Contains(r.body, "Pay within") {
		t.Fatal("an order past its deadline still offers to pay")
	}

	e.api.change(id, func(o *gateway.Order) {
		o.Status, o.CancelReason, o.PaymentDueAt = gateway.StatusCancelled, "expired", nil
	})
	r = b.get("/orders/" + id)
	mustContain(t, r, `id="expired"`, "This order expired", "back in stock", "Nothing was charged", "place a new order", `data-status="expired"`, ">Expired<")
	for _, gone := range []string{`id="pay-order"`, `id="cancel-order"`, "Pay within", `id="time-up"`} {
		if strings.Contains(r.body, gone) {
			t.Fatalf("the expired order's page shows %s", gone)
		}
	}
	r = b.get("/orders/" + id + "/pay")
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/orders/"+id {
		t.Fatalf("the expired order's payment page went to %q", r.location())
	}
	mustContain(t, b.get("/orders"), ">Expired<")
}

// TestPayingAnOrderThatExpiredMeanwhile: the order expires while the shopper fills in the
// card; the answer says so in words, not in the API's.
func TestPayingAnOrderThatExpiredMeanwhile(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	id := placeOrder(t, b)
	key := formValue(t, b.get("/orders/"+id+"/pay").body, "idempotencyKey")
	e.api.change(id, func(o *gateway.Order) {
		o.Status, o.CancelReason, o.PaymentDueAt = gateway.StatusCancelled, "expired", nil
	})
	e.api.failNext("POST /api/orders/"+id+"/pay", http.StatusConflict, 0, map[string]any{
		"detail": "the order expired before it was paid", "reason": "order_expired"})
	r := b.post("/orders/"+id+"/pay", url.Values{"idempotencyKey": {key}, "number": {"4242 4242 4242 4242"},
		"expMonth": {"12"}, "expYear": {"2031"}, "cvc": {"123"}, "holder": {"Alice"}})
	mustStatus(t, r, http.StatusSeeOther)
	r = b.get(r.location())
	mustContain(t, r, "This order expired before it was paid, so nothing was charged.", `id="expired"`)
}

// TestTooManyUnpaidOrdersAtCheckout: the order service's cap is explained in a sentence
// that says what to do, the machine reason never shows, and the cart is kept.
func TestTooManyUnpaidOrdersAtCheckout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}, "quantity": {"2"}}), http.StatusSeeOther)
	e.api.failNext("POST /api/orders", http.StatusConflict, 0, map[string]any{
		"detail": "you already have 3 unpaid orders", "reason": "too_many_unpaid_orders"})
	r := b.post("/checkout", url.Values{"idempotencyKey": {formValue(t, b.get("/checkout").body, "idempotencyKey")}})
	mustStatus(t, r, http.StatusConflict)
	mustContain(t, r, "You already have as many unpaid orders as the shop holds", "Pay for one of them or cancel it in My orders", `id="place-order"`)
	if strings.Contains(r.body, "too_many_unpaid_orders") {
		t.Fatal("the page shows the machine reason")
	}
	mustContain(t, b.get("/cart"), "Gopher mug", `value="2"`, `max="10"`)
}
