package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// TestAdminRefundsAndDeletes: the admin sees all orders, refunds a payment and deletes an
// order; the audit log shows both.
func TestAdminRefundsAndDeletes(t *testing.T) {
	shopper := harness.NewBrowser(t)
	paid := buy(t, shopper, harness.Bob)
	pay(shopper, cardApproved)
	// A second order, left unpaid, for the admin to delete.
	unpaid := buy(t, shopper, harness.Bob)

	admin := harness.NewBrowser(t)
	admin.Open(shop.WebappURL + "/admin?customer=bob")
	// Keycloak's login page wears the shop's theme (keycloak/themes/shop).
	admin.WaitFor("#kc-form-login")
	if note := admin.Text("#shop-test-note"); !strings.Contains(note, "Demo shop: test users only") {
		t.Fatalf("the login page's footer says %q, want the shop theme's test-only note", note)
	}
	if dir := os.Getenv("SHOP_SCREENSHOTS"); dir != "" {
		admin.Screenshot(filepath.Join(dir, "3-keycloak-login.png"))
	}
	admin.KeycloakLogin(harness.Ada)
	for _, id := range []string{paid, unpaid} {
		admin.WaitFor(`#orders tr[data-order-id="` + id + `"]`)
	}
	// Each order has its own number, and the admin finds one by it.
	paidNo, unpaidNo := admin.Attr(`#orders tr[data-order-id="`+paid+`"]`, "data-order-number"), admin.Attr(`#orders tr[data-order-id="`+unpaid+`"]`, "data-order-number")
	if paidNo == "" || paidNo == "0" || paidNo == unpaidNo {
		t.Fatalf("orders placed a moment apart are numbered %q and %q", paidNo, unpaidNo)
	}
	admin.Open(shop.WebappURL + "/admin?number=" + unpaidNo)
	admin.WaitFor(`#orders tr[data-order-id="` + unpaid + `"]`)
	if admin.Has(`#orders tr[data-order-id="` + paid + `"]`) {
		t.Fatalf("the search for order %s also lists order %s", unpaidNo, paidNo)
	}

	admin.Open(shop.WebappURL + "/admin/orders/" + paid)
	admin.Click("#refund") // empty amount: all that remains
	admin.Open(shop.WebappURL + "/admin/orders/" + paid)
	if got := admin.Attr("article[data-order-id]", "data-status"); got != "refunded" {
		t.Fatalf("order %s after a full refund: status %q, want refunded", paid, got)
	}

	admin.Open(shop.WebappURL + "/admin/orders/" + unpaid)
	admin.Click("#delete-order")
	admin.Open(shop.WebappURL + "/admin?customer=bob")
	if admin.Has(`#orders tr[data-order-id="` + unpaid + `"]`) {
		t.Fatalf("deleted order %s still listed", unpaid)
	}

	admin.Open(shop.WebappURL + "/admin/audit")
	admin.WaitFor(`#audit li[data-action="payment.refund"]`)
	// Sentences with order numbers and money, never codes, JSON or ids.
	audit := admin.Text("#audit")
	for _, want := range []string{"ada deleted order " + unpaidNo + " (placed by bob, pending, €", "ada refunded €", "of the payment for order " + paidNo + ": nothing of it is left to refund."} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	for _, raw := range []string{"order.delete", "payment.refund", unpaid, paid, "{", "detail", "="} {
		if strings.Contains(audit, raw) {
			t.Errorf("the audit log shows %q:\n%s", raw, audit)
		}
	}
	admin.Open(shop.WebappURL + "/admin/audit?action=order.delete&actor=ada")
	admin.WaitFor(`#audit li[data-action="order.delete"]`)
	if admin.Has(`#audit li[data-action="payment.refund"]`) {
		t.Fatal("the audit log filtered to deletes shows a refund")
	}
	if dir := os.Getenv("SHOP_SCREENSHOTS"); dir != "" {
		admin.Open(shop.WebappURL + "/admin/audit")
		admin.WaitFor(`#audit li[data-action="payment.refund"]`)
		admin.Screenshot(filepath.Join(dir, "11-admin-audit.png"))
	}
}

// TestShopperIsRefusedAdmin: a shopper gets the 403 page on /admin, and 403 on every admin
// API route through the gateway.
func TestShopperIsRefusedAdmin(t *testing.T) {
	b := harness.NewBrowser(t)
	b.Open(shop.WebappURL + "/admin")
	b.KeycloakLogin(harness.Alice)
	b.WaitFor("#error")
	if got := b.Attr("#error", "data-status"); got != "403" {
		t.Fatalf("/admin as a shopper: error page %q, want 403", got)
	}
	if b.Has("#orders") {
		t.Fatal("the 403 page shows the orders table")
	}

	token := apiToken(t, harness.Alice)
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/orders/admin/all"},
		{"GET", "/api/orders/admin/audit"},
		{"GET", "/api/payments/admin/all"},
		{"GET", "/api/payments/admin/audit"},
		{"POST", "/api/admin/products"},
		{"PUT", "/api/admin/products/00000000-0000-0000-0000-000000000000"},
		{"DELETE", "/api/admin/products/00000000-0000-0000-0000-000000000000"},
	} {
		resp := apiCall(t, token, r.method, r.path, `{"name":"x","price":{"amount":1,"currency":"EUR"},"stock":1}`)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s as a shopper: %d, want 403", r.method, r.path, resp.StatusCode)
		}
	}
}

// apiToken logs u in through Keycloak's login form (PKCE, as the test-only api-tester client) and returns
// an access token for the API.
func apiToken(t *testing.T, u harness.User, scopes ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := harness.NewLoginSession(ctx, shop.Keycloak.Issuer(), harness.APITester, harness.APITesterSecret, shop.WebappURL+"/auth/callback")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(ctx, u.Name, u.Password, scopes...)
	if err != nil {
		t.Fatalf("login of %s: %v", u.Name, err)
	}
	return tok.AccessToken
}

// apiCall sends a request to the gateway; the body is read and closed.
func apiCall(t *testing.T, token, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, shop.GatewayURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
