package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// kcAdmin returns an admin API client of the stack's Keycloak.
func kcAdmin(t *testing.T) (*harness.KeycloakAdmin, context.Context) {
	t.Helper()
	ctx := t.Context()
	a, err := harness.NewKeycloakAdmin(ctx, shop.Keycloak)
	if err != nil {
		t.Fatal(err)
	}
	return a, ctx
}

// loggedIn logs u in through the web shop with one product in the cart, and returns the
// browser on the cart page.
func loggedIn(t *testing.T, u harness.User) *harness.Browser {
	t.Helper()
	b := harness.NewBrowser(t)
	b.Open(shop.WebappURL + "/")
	b.Click("button[name=add-to-cart]")
	b.Open(shop.WebappURL + "/orders")
	b.KeycloakLogin(u)
	b.WaitFor("#logout")
	b.Open(shop.WebappURL + "/cart")
	return b
}

// onLoginPage reports whether the browser shows Keycloak's login form.
func onLoginPage(b *harness.Browser) bool {
	return strings.HasPrefix(b.URL(), shop.KeycloakURL) && b.Has("#kc-form-login")
}

// TestSessionOutlivesShortAccessTokens: with access tokens shortened to 35 s (the webapp
// refreshes 30 s before expiry), a session keeps working across several refreshes, which
// Keycloak records; when the refresh token is revoked in Keycloak, the next action sends the
// shopper to log in and back to the page, cart intact.
func TestSessionOutlivesShortAccessTokens(t *testing.T) {
	admin, ctx := kcAdmin(t)
	if err := admin.Call(ctx, http.MethodPut, "", map[string]any{"accessTokenLifespan": 35}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Call(context.Background(), http.MethodPut, "", map[string]any{"accessTokenLifespan": 300}, nil)
	})
	if err := admin.Call(ctx, http.MethodPut, "/events/config", map[string]any{
		"eventsEnabled": true, "enabledEventTypes": []string{"REFRESH_TOKEN"}, "eventsExpiration": 3600,
	}, nil); err != nil {
		t.Fatal(err)
	}
	userID, err := admin.UserID(ctx, harness.Bob.Name)
	if err != nil {
		t.Fatal(err)
	}
	refreshes := func() int {
		var events []map[string]any
		if err := admin.Call(ctx, http.MethodGet, "/events?type=REFRESH_TOKEN&client=webapp&user="+userID, nil, &events); err != nil {
			t.Fatal(err)
		}
		return len(events)
	}
	before := refreshes()

	b := loggedIn(t, harness.Bob)
	// Pages that call the API with the shopper's token (the cart page does not).
	for i, page := range []string{"/orders", "/checkout", "/orders"} {
		time.Sleep(7 * time.Second) // the token is now within 30 s of expiry
		b.Open(shop.WebappURL + page)
		if !b.Has("#logout") {
			t.Fatalf("step %d (%s): no longer logged in, at %s", i, page, b.URL())
		}
	}
	// Keycloak stores events asynchronously: give the last one a moment.
	deadline := time.Now().Add(10 * time.Second)
	n := refreshes() - before
	for n < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		n = refreshes() - before
	}
	if n < 3 {
		t.Fatalf("Keycloak recorded %d refreshes of bob's webapp tokens, want at least 3", n)
	}

	// Revoke every token issued so far (Keycloak's "not before" revocation): the next
	// refresh is refused.
	if err := admin.Call(ctx, http.MethodPut, "", map[string]any{"notBefore": time.Now().Unix() + 1}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	b.Open(shop.WebappURL + "/orders")
	if !onLoginPage(b) {
		t.Fatalf("after revocation the next action shows %s, want Keycloak's login page", b.URL())
	}
	b.KeycloakLogin(harness.Bob)
	if got := b.URL(); got != shop.WebappURL+"/orders" {
		t.Fatalf("after logging in again the browser is at %s, want back at /orders", got)
	}
	if got := b.Text("#cart-count"); got == "0" {
		t.Fatal("the cart was lost on the way through login")
	}
}

// TestLogoutEndsKeycloakSession: logging out of the web shop ends the Keycloak session, so
// going back to a private page shows Keycloak's login form, not a silent login. The logout
// page posts the ID token to Keycloak by itself (its script submits the form), and Keycloak
// sends the browser back to the shop's front page.
func TestLogoutEndsKeycloakSession(t *testing.T) {
	b := loggedIn(t, harness.Alice)
	b.Click("#logout")
	b.WaitFor(`button[name="add-to-cart"]`) // the catalog: past the logout page and Keycloak
	if !strings.HasPrefix(b.URL(), shop.WebappURL) {
		t.Fatalf("after logout the browser is at %s, want back at the shop", b.URL())
	}
	if !b.Has("#login") {
		t.Fatal("the shop still shows a logged-in user after logout")
	}
	b.Open(shop.WebappURL + "/orders")
	if !onLoginPage(b) {
		t.Fatalf("a private page after logout shows %s, want Keycloak's login page", b.URL())
	}
}

// TestBackchannelLogoutEndsWebappSession: an operator ending the user's sessions in Keycloak
// (admin API) ends the web shop's session too, through Keycloak's back-channel logout.
func TestBackchannelLogoutEndsWebappSession(t *testing.T) {
	b := loggedIn(t, harness.Alice)
	admin, ctx := kcAdmin(t)
	userID, err := admin.UserID(ctx, harness.Alice.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Call(ctx, http.MethodPost, "/users/"+userID+"/logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	b.Open(shop.WebappURL + "/orders")
	if !onLoginPage(b) {
		t.Fatalf("after Keycloak ended alice's sessions the shop shows %s, want Keycloak's login page", b.URL())
	}
}
