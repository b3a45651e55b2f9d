package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"example.com/shop/integration/harness"
)

// TestDeclinedCardThenRetryPaysOnce: a declined card gives a clear message and leaves the
// order payable; a retry with a good card pays it, with exactly one approved charge.
func TestDeclinedCardThenRetryPaysOnce(t *testing.T) {
	b := harness.NewBrowser(t)
	id := buy(t, b, harness.Alice)
	pay(b, cardDeclined)
	b.WaitFor("#declined")
	// A sentence for the reason, never the payment service's code for it.
	if msg := b.Text("#declined"); !strings.Contains(msg, "Your card was declined. The bank that issued it did not approve the payment.") ||
		strings.Contains(msg, "card_declined") {
		t.Fatalf("decline message %q: want the plain sentence for card_declined", msg)
	}
	token := apiToken(t, harness.Alice)
	var o order
	if st := apiGet(t, token, "/api/orders/"+id, &o); st != http.StatusOK || o.Status != "pending" {
		t.Fatalf("after the decline: %d %+v, want a pending order", st, o)
	}
	// The page names the order by its number, not by its id.
	if text := b.Text("main"); o.Number < 10001 || !strings.Contains(text, "Order "+strconv.FormatInt(o.Number, 10)+",") || strings.Contains(text, id) {
		t.Fatalf("the payment page names order %d (%s) as: %q", o.Number, id, text)
	}
	if dir := os.Getenv("SHOP_SCREENSHOTS"); dir != "" {
		b.Screenshot(filepath.Join(dir, "14-card-declined.png"))
	}

	pay(b, cardApproved)
	if st := apiGet(t, token, "/api/orders/"+id, &o); st != http.StatusOK || o.Status != "paid" {
		t.Fatalf("after the retry: %d %+v, want paid", st, o)
	}
	if ps := paymentsOf(t, token, id); approved(ps) != 1 {
		t.Fatalf("payments of order %s: %+v, want exactly one approved", id, ps)
	}
}

// TestOtherShopperCannotSeeOrActOnOrder: bob gets 404 for alice's order in the web shop and
// on every order route of the API, and alice's order is unchanged afterwards.
func TestOtherShopperCannotSeeOrActOnOrder(t *testing.T) {
	alice := harness.NewBrowser(t)
	id := buy(t, alice, harness.Alice)

	bob := harness.NewBrowser(t)
	bob.Open(shop.WebappURL + "/orders")
	bob.KeycloakLogin(harness.Bob)
	if bob.Has(`[data-order-id="` + id + `"]`) {
		t.Fatal("bob's order list shows alice's order")
	}
	bob.Open(shop.WebappURL + "/orders/" + id)
	bob.WaitFor("#error")
	if got := bob.Attr("#error", "data-status"); got != "404" {
		t.Fatalf("alice's order page for bob: %q, want 404", got)
	}

	bobToken := apiToken(t, harness.Bob)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/orders/" + id, ""},
		{"POST", "/api/orders/" + id + "/cancel", ""},
		{"POST", "/api/orders/" + id + "/pay", `{"card":{"number":"4242424242424242","expMonth":12,"expYear":2031,"cvc":"123","holder":"Bob"}}`},
		{"DELETE", "/api/orders/" + id, ""},
	} {
		if resp := apiCall(t, bobToken, r.method, r.path, r.body); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s as bob: %d, want 404", r.method, r.path, resp.StatusCode)
		}
	}
	var o order
	if st := apiGet(t, apiToken(t, harness.Alice), "/api/orders/"+id, &o); st != http.StatusOK || o.Status != "pending" {
		t.Fatalf("alice's order after bob's attempts: %d %+v, want it pending and hers", st, o)
	}
}
