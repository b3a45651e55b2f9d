package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
)

// outcome is the status each caller gets from one route.
type outcome struct {
	anonymous, wrongAudience, owner, otherShopper, admin, adminNoScope, service int
}

var (
	everyone    = outcome{200, 200, 200, 200, 200, 200, 200}
	adminOnly   = func(ok int) outcome { return outcome{401, 401, 403, 403, ok, ok, 403} }
	shoppers    = func(ok int) outcome { return outcome{401, 401, ok, ok, ok, ok, 403} }
	ownerOrAdmn = func(ok int) outcome { return outcome{401, 401, ok, 404, ok, ok, 404} }
)

// routeCase is one route of the matrix: the path names its fixture with :id.
type routeCase struct {
	method, path string
	// id is the fixture :id stands for: "product", "pending" (alice's pending order) or
	// "paid" (alice's paid order).
	id   string
	body string
	want outcome
	// mutates says a success must change the database: it proves the snapshot that shows
	// refusals changed nothing can see a change at all.
	mutates bool
}

var matrix = []routeCase{
	{http.MethodGet, "/api/public/products", "", "", everyone, false},
	{http.MethodGet, "/api/public/products/:id", "product", "", everyone, false},
	{http.MethodPost, "/api/admin/products", "", `{"name":"Teapot","price":{"amount":4200,"currency":"EUR"},"stock":5}`, adminOnly(201), true},
	{http.MethodPut, "/api/admin/products/:id", "product", `{"name":"Towel","price":{"amount":990,"currency":"EUR"},"stock":7}`, adminOnly(200), true},
	{http.MethodDelete, "/api/admin/products/:id", "product", "", adminOnly(204), true},
	{http.MethodPost, "/api/orders", "", `{"items":[{"productId":"` + towelID + `","quantity":1}]}`, shoppers(201), true},
	{http.MethodGet, "/api/orders", "", "", shoppers(200), false},
	{http.MethodGet, "/api/orders/admin/all", "", "", outcome{401, 401, 403, 403, 200, 403, 403}, false},
	{http.MethodGet, "/api/orders/admin/audit", "", "", adminOnly(200), false},
	{http.MethodGet, "/api/orders/:id", "pending", "", ownerOrAdmn(200), false},
	{http.MethodPost, "/api/orders/:id/cancel", "pending", "", ownerOrAdmn(200), true},
	{http.MethodPost, "/api/orders/:id/pay", "pending", cardBody(cardApproved), ownerOrAdmn(200), true},
	{http.MethodDelete, "/api/orders/:id", "pending", "", ownerOrAdmn(204), true},
}

// TestEveryRouteForEveryCaller is the authorisation matrix: every route of the table, called
// by every kind of caller, each on a fresh database. A refusal must be problem+json and
// leave every table exactly as it was (and never reach the payment service); a success of
// a mutating route must change something.
func TestEveryRouteForEveryCaller(t *testing.T) {
	r := newRealm(t)
	callers := []struct {
		name  string
		token string
		want  func(outcome) int
	}{
		{"anonymous", "", func(o outcome) int { return o.anonymous }},
		{"wrong audience", r.wrongAudience, func(o outcome) int { return o.wrongAudience }},
		{"owner", r.alice, func(o outcome) int { return o.owner }},
		{"other shopper", r.bob, func(o outcome) int { return o.otherShopper }},
		{"admin", r.admin, func(o outcome) int { return o.admin }},
		{"admin without admin:read", r.adminNoScope, func(o outcome) int { return o.adminNoScope }},
		{"service account", r.service, func(o outcome) int { return o.service }},
	}
	for _, rc := range matrix {
		for _, caller := range callers {
			t.Run(rc.method+" "+rc.path+"/"+caller.name, func(t *testing.T) {
				e := newEnv(t, r)
				path := strings.Replace(rc.path, ":id", fixture(e, rc.id), 1)
				before := e.snapshot()
				var body any
				if rc.body != "" {
					body = rc.body
				}
				resp := e.do(rc.method, path, caller.token, body)
				want := caller.want(rc.want)
				if resp.status != want {
					t.Fatalf("status %s, want %d", resp, want)
				}
				after := e.snapshot()
				if resp.status >= 400 {
					resp.problem(t)
					if after != before {
						t.Fatalf("a refused request changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
					}
					if n := len(e.pay.callLog()); n != 0 {
						t.Fatalf("a refused request called the payment service %d times", n)
					}
				} else if rc.mutates && after == before {
					t.Fatal("a successful change left the database as it was")
				}
				switch resp.status {
				case 401:
					if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
						t.Fatalf("401 without a Bearer challenge: %q", resp.header.Get("WWW-Authenticate"))
					}
				case 403:
					if rc.path == "/api/orders/admin/all" && !strings.Contains(resp.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
						t.Fatalf("missing scope without an insufficient_scope challenge: %q", resp.header.Get("WWW-Authenticate"))
					}
				}
			})
		}
	}
}

// TestTheMatrixCoversTheRouteTable keeps the matrix honest: a route added to the table
// without a line here fails.
func TestTheMatrixCoversTheRouteTable(t *testing.T) {
	e := newEnv(t, newRealm(t))
	covered := map[string]bool{}
	for _, rc := range matrix {
		covered[rc.method+" "+rc.path] = true
	}
	for _, rt := range e.api.Routes {
		if !covered[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s (%s) is not in the caller matrix", rt.Method, rt.Path, rt.Policy)
		}
	}
	if len(matrix) != len(e.api.Routes) {
		t.Errorf("the matrix has %d routes, the table %d", len(matrix), len(e.api.Routes))
	}
}

// fixture prepares what :id stands for and returns its id.
func fixture(e *env, kind string) string {
	ctx := context.Background()
	switch kind {
	case "":
		return ""
	case "product":
		return towelID
	case "pending", "paid":
		o, _, err := e.store.CreateOrder(ctx, store.NewOrder{UserID: e.realm.aliceSub, Customer: "alice",
			Lines: []order.Line{{ProductID: towelID, Quantity: 2}}})
		if err != nil {
			e.t.Fatal(err)
		}
		if kind == "paid" {
			if _, _, err := e.store.MarkPaid(ctx, o.ID, "pay-fixture"); err != nil {
				e.t.Fatal(err)
			}
		}
		return o.ID
	}
	e.t.Fatalf("unknown fixture %q", kind)
	return ""
}
