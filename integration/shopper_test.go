package integration

import (
	"strings"
	"testing"

	"example.com/shop/integration/harness"
)

// Test cards of the simulated processor (docs/api-contract.md).
const (
	cardApproved = "4242 4242 4242 4242"
	cardDeclined = "4000 0000 0000 0002"
)

// buy puts the first product of the catalog in the cart, logs in at checkout through
// Keycloak's real login page unless the browser is logged in already, places the order and returns its id, with
// the browser on the payment page.
func buy(t *testing.T, b *harness.Browser, u harness.User) string {
	t.Helper()
	b.Open(shop.WebappURL + "/")
	b.Click("button[name=add-to-cart]")
	if got := b.Text("#cart-count"); got == "0" {
		t.Fatalf("cart count after adding: %s", got)
	}
	b.Open(shop.WebappURL + "/cart")
	b.Click("#checkout")
	if !strings.HasPrefix(b.URL(), shop.WebappURL) { // not logged in yet: Keycloak's page
		b.KeycloakLogin(u)
	}
	// Back from Keycloak on the checkout page, cart intact.
	if !strings.HasPrefix(b.URL(), shop.WebappURL+"/checkout") {
		t.Fatalf("after login the browser is at %s, want the checkout page", b.URL())
	}
	b.Click("#place-order")
	b.WaitFor("#pay")
	// The payment page names the order in its URL: /orders/<id>/pay.
	id, ok := strings.CutSuffix(strings.TrimPrefix(b.URL(), shop.WebappURL+"/orders/"), "/pay")
	if !ok || id == "" {
		t.Fatalf("after placing the order the browser is at %s, want /orders/<id>/pay", b.URL())
	}
	return id
}

// pay fills in the payment form, which must be showing, and submits it.
func pay(b *harness.Browser, card string) {
	b.Fill("#number", card)
	b.Fill("#expMonth", "12")
	b.Fill("#expYear", "2031")
	b.Fill("#cvc", "123")
	b.Fill("#holder", "E2E Shopper")
	b.Click("#pay")
}

// TestShopperBuysAndSeesOrderPaid: browse, add to cart, log in, check out with an approving
// card, see the order paid in "my orders".
func TestShopperBuysAndSeesOrderPaid(t *testing.T) {
	b := harness.NewBrowser(t)
	id := buy(t, b, harness.Alice)
	pay(b, cardApproved)
	b.Open(shop.WebappURL + "/orders")
	row := "tr[data-order-id=\"" + id + "\"]"
	b.WaitFor(row)
	if got := b.Attr(row, "data-status"); got != "paid" {
		t.Fatalf("order %s shows status %q in my orders, want paid", id, got)
	}
}
