package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/oidctest"
)

// paidOrder has alice buy a mug (€12.99) with the good card and returns the order id.
func paidOrder(t *testing.T, e *env) string {
	t.Helper()
	alice := e.browser()
	alice.loginAs(oidctest.Alice)
	order := placeOrder(t, alice)
	pay := "/orders/" + order + "/pay"
	r := alice.post(pay, url.Values{"idempotencyKey": {formValue(t, alice.get(pay).body, "idempotencyKey")},
		"number": {"4242424242424242"}, "expMonth": {"12"}, "expYear": {"2031"}, "cvc": {"123"}, "holder": {"Alice"}})
	mustStatus(t, r, http.StatusSeeOther)
	return order
}

// TestAdminConsole: the admin finds the order, refunds part then the rest, deletes it, and
// sees it all in the audit log; every call carries the step-up token with admin:read.
func TestAdminConsole(t *testing.T) {
	e := newEnv(t)
	order := paidOrder(t, e)
	ada := e.browser()
	ada.adminLogin()

	r := ada.get("/admin?status=paid&customer=alice")
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, `data-order-id="`+order+`"`, `data-status="paid"`, `data-customer="alice"`, `<option value="paid" selected>`)
	all := e.api.callsTo("GET /api/orders/admin/all")
	if q := all[len(all)-1].Query; q != "customer=alice&limit=50&offset=0&status=paid" {
		t.Fatalf("filters sent as %q", q)
	}
	mustContain(t, ada.get("/admin?status=cancelled"), `id="no-orders"`)
	mustContain(t, ada.get("/admin?status=bogus"), order) // an unknown status is no filter

	r = ada.get("/admin/orders/" + order)
	mustContain(t, r, "alice", "visa ending in 4242", `id="refund"`, `id="delete-order"`, "€12.99")

	refund := func(amount string) *response {
		page := ada.get("/admin/orders/" + order)
		return ada.post("/admin/orders/"+order+"/refund", url.Values{"amount": {amount}, "idempotencyKey": {formValue(t, page.body, "idempotencyKey")}})
	}
	mustStatus(t, refund("5,00"), http.StatusSeeOther)
	mustContain(t, ada.get("/admin/orders/"+order), "Refunded €5.00.", `id="payment-refunded">€5.00`)
	mustStatus(t, refund("100"), http.StatusSeeOther)
	mustContain(t, ada.get("/admin/orders/"+order), "Refund not possible", "exceeds what remains")
	mustStatus(t, refund("abc"), http.StatusSeeOther)
	mustContain(t, ada.get("/admin/orders/"+order), "enter an amount like 12.50")
	mustStatus(t, refund(""), http.StatusSeeOther)
	r = ada.get("/admin/orders/" + order)
	mustContain(t, r, "Refunded everything that remained.", `data-status="refunded"`)
	if strings.Contains(r.body, `id="refund"`) {
		t.Fatal("a fully refunded payment still offers a refund")
	}
	refunds := e.api.callsTo("POST /api/payments/")
	if len(refunds) != 3 || refunds[0].Body != `{"amount":500}` || refunds[2].Body != `{}` || refunds[0].IdempotencyKey == "" {
		t.Fatalf("refund calls %+v", refunds)
	}

	mustStatus(t, ada.post("/admin/orders/"+order+"/delete", nil), http.StatusSeeOther)
	mustContain(t, ada.get("/admin"), "is deleted")
	mustStatus(t, ada.get("/admin/orders/"+order), http.StatusNotFound)

	r = ada.get("/admin/audit")
	mustContain(t, r, `data-source="payment" data-action="payment.refund"`, `data-source="order" data-action="order.delete"`)
	if strings.Index(r.body, "order.delete") > strings.Index(r.body, "payment.refund") {
		t.Fatal("the audit log is not newest first")
	}

	for _, c := range append(e.api.callsTo("GET /api/orders/admin"), e.api.callsTo("POST /api/payments")...) {
		if !strings.HasPrefix(c.Auth, "DPoP ") {
			t.Fatalf("admin call without token: %+v", c)
		}
	}
}

// TestAdminProducts: create (with mistakes first), edit and retire a product.
func TestAdminProducts(t *testing.T) {
	e := newEnv(t)
	ada := e.browser()
	ada.adminLogin()

	r := ada.post("/admin/products", url.Values{"name": {""}, "price": {"12.345"}, "currency": {"euro"}, "stock": {"-1"}})
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r, "Enter a name", "Enter a price", "three-letter currency", "whole number")

	r = ada.post("/admin/products", url.Values{"name": {"Free sticker"}, "price": {"0"}, "currency": {"EUR"}, "stock": {"3"}})
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r, "invalid product", "must be positive", `value="Free sticker"`)

	r = ada.post("/admin/products", url.Values{"name": {"Sticker <b>pack</b>"}, "description": {"Five stickers."}, "price": {"3.50"}, "currency": {"eur"}, "stock": {"40"}})
	mustStatus(t, r, http.StatusSeeOther)
	r = ada.get("/admin/products")
	mustContain(t, r, "Sticker &lt;b&gt;pack&lt;/b&gt;", "€3.50")
	created := e.api.callsTo("POST /api/admin/products")
	if body := created[len(created)-1].Body; !strings.Contains(body, `"price":{"amount":350,"currency":"EUR"}`) {
		t.Fatalf("created with %s", body)
	}

	r = ada.get("/admin/products/" + mugID + "/edit")
	mustContain(t, r, `value="Gopher mug"`, `value="12.99"`, `value="10"`)
	mustStatus(t, ada.post("/admin/products/"+mugID, url.Values{"name": {"Gopher mug XL"}, "description": {"Bigger."}, "price": {"15"}, "currency": {"EUR"}, "stock": {"7"}}), http.StatusSeeOther)
	mustContain(t, ada.get("/"), "Gopher mug XL", "€15.00")

	mustStatus(t, ada.post("/admin/products/"+mugID+"/retire", nil), http.StatusSeeOther)
	if strings.Contains(ada.get("/").body, "Gopher mug XL") {
		t.Fatal("a retired product is still in the catalog")
	}
	mustStatus(t, ada.get("/admin/products/"+mugID+"/edit"), http.StatusNotFound)
}

// TestStepUpRefused: when Keycloak refuses admin:read (the account lost ADMIN after its
// token was issued), the user gets a clear page, stays logged in, and the console then
// answers 403 instead of asking Keycloak again (each refusal counts as a failed login).
func TestStepUpRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Ada)
	r := b.get("/admin")
	mustStatus(t, r, http.StatusSeeOther)
	r = b.get(r.location())
	mustStatus(t, r, http.StatusSeeOther)
	demoted := oidctest.Ada
	demoted.Roles = []string{"USER"}
	e.kc.SetRoles(oidctest.Ada, demoted.Roles...)
	r = b.follow(e.kc.Authorize(r.location(), demoted))
	mustStatus(t, r, http.StatusUnauthorized)
	mustContain(t, r, "refused admin access")
	if !loggedIn(t, b) {
		t.Fatal("a refused step-up ended the shopping session")
	}
	mustStatus(t, b.get("/admin"), http.StatusForbidden)
	asked := 0
	for _, q := range e.kc.AuthorizationRequests() {
		if strings.Contains(q.Get("scope"), "admin:read") {
			asked++
		}
	}
	if asked != 1 {
		t.Fatalf("admin:read was requested %d times", asked)
	}
}
