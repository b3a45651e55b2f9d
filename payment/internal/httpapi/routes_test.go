package httpapi_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/testkit"
)

// probes are the platform's own routes, the only ones served without a policy.
var probes = []string{"/healthz", "/readyz", "/metrics"}

// table is the route table, keyed "METHOD path".
func table() map[string]authz.Route {
	out := map[string]authz.Route{}
	for _, r := range (&httpapi.Handlers{}).Routes() {
		out[r.Method+" "+r.Path] = r
	}
	return out
}

// unpoliced lists the routes app serves that the route table does not list, and the table's
// routes whose handler chain lacks authentication and policy (authz.Mount puts three
// handlers on a non-public route: authenticate, policy, handler).
func unpoliced(app *fiber.App) []string {
	tbl := table()
	var bad []string
	for _, r := range app.GetRoutes(true) {
		if slices.Contains(probes, r.Path) {
			continue
		}
		rt, ok := tbl[r.Method+" "+r.Path]
		switch {
		case !ok:
			bad = append(bad, r.Method+" "+r.Path+": not in the route table")
		case !rt.Policy.IsPublic() && len(r.Handlers) != 3:
			bad = append(bad, r.Method+" "+r.Path+": handler chain without authentication and policy")
		}
	}
	return bad
}

func TestEveryRouteHasAPolicy(t *testing.T) {
	iss := testkit.NewIssuer(t)
	e := newEnv(t, iss, tokens(t, iss))
	if bad := unpoliced(e.app); len(bad) > 0 {
		t.Fatalf("routes served without a policy:\n%s", strings.Join(bad, "\n"))
	}
	served := map[string]bool{}
	for _, r := range e.app.GetRoutes(true) {
		served[r.Method+" "+r.Path] = true
	}
	for k, r := range table() {
		if !served[k] {
			t.Errorf("%s is in the route table but not served", k)
		}
		if r.Policy.IsPublic() {
			t.Errorf("%s is public: every payment route needs a token", k)
		}
	}

	// The check itself must catch a route added behind the table's back.
	e.app.Get("/api/payments/debug/dump", func(c *fiber.Ctx) error { return c.SendString("all the data") })
	bad := unpoliced(e.app)
	if len(bad) == 0 {
		t.Fatal("a route added outside the table went unnoticed")
	}
	for _, b := range bad {
		if !strings.Contains(b, "/api/payments/debug/dump") {
			t.Fatalf("the check flagged a route it should not have: %v", bad)
		}
	}
}

// TestOpenAPIMatchesTheRouteTable checks api/openapi.yaml against the route table both
// ways, and that each operation's x-policy names the route's policy.
func TestOpenAPIMatchesTheRouteTable(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("api/openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Fatalf("the document must require the bearer scheme for every operation: %v", doc.Security)
	}
	tbl := table()
	param := regexp.MustCompile(`\{([^}]+)\}`)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + param.ReplaceAllString(path, ":$1")
			documented[key] = true
			rt, ok := tbl[key]
			if !ok {
				t.Errorf("api/openapi.yaml documents %s, which the route table lacks", key)
				continue
			}
			if got := op.Extensions["x-policy"]; got != rt.Policy.String() {
				t.Errorf("%s: x-policy %v, route table says %s", key, got, rt.Policy)
			}
			if op.Security != nil && len(*op.Security) == 0 {
				t.Errorf("%s is documented as needing no token", key)
			}
			if op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s does not document 401", key)
			}
		}
	}
	for key := range tbl {
		if !documented[key] {
			t.Errorf("the route table has %s, which api/openapi.yaml does not document", key)
		}
	}
}

// TestRouteCallerMatrix calls every route as every kind of caller, each on a fresh store,
// and checks the status and that a refused call changed nothing in the store.
func TestRouteCallerMatrix(t *testing.T) {
	iss := testkit.NewIssuer(t)
	toks := tokens(t, iss)
	type fixture struct{ payment, order string }
	routes := []struct {
		name   string
		method string
		path   func(fixture) string
		body   func(fixture) any
		key    bool
		want   map[caller]int
		// ok checks a successful answer further.
		ok func(t *testing.T, as caller, r response, fx fixture)
	}{
		{
			name: "charge", method: "POST", key: true,
			path: func(fixture) string { return "/api/payments" },
			body: func(fx fixture) any { return chargeJSON(fx.order, processor.CardApproved) },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 201, otherShopper: 422, admin: 201, adminNoScope: 201, serviceAcct: 403},
			ok: func(t *testing.T, _ caller, r response, fx fixture) {
				if b := r.json(t); b["userId"] != aliceSub || b["orderId"] != fx.order {
					t.Errorf("the payment belongs to the order's owner, whoever charged it: %v", b)
				}
			},
		},
		{
			name: "list mine", method: "GET", path: func(fixture) string { return "/api/payments" },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 200, otherShopper: 200, admin: 200, adminNoScope: 200, serviceAcct: 403},
			ok: func(t *testing.T, as caller, r response, fx fixture) {
				got := r.list(t)
				if as == owner && (len(got) != 1 || got[0]["id"] != fx.payment) {
					t.Errorf("the owner's list: %v", got)
				}
				if as != owner && len(got) != 0 {
					t.Errorf("%s sees someone else's payments: %v", as, got)
				}
			},
		},
		{
			name: "get", method: "GET", path: func(fx fixture) string { return "/api/payments/" + fx.payment },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 200, otherShopper: 404, admin: 200, adminNoScope: 200, serviceAcct: 404},
			ok: func(t *testing.T, _ caller, r response, fx fixture) {
				if r.json(t)["id"] != fx.payment {
					t.Errorf("got %s", r.body)
				}
			},
		},
		{
			name: "get unknown", method: "GET", path: func(fixture) string { return "/api/payments/" + uuid.NewString() },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 404, otherShopper: 404, admin: 404, adminNoScope: 404, serviceAcct: 404},
		},
		{
			name: "refund", method: "POST", key: true,
			path: func(fx fixture) string { return "/api/payments/" + fx.payment + "/refunds" },
			body: func(fixture) any { return map[string]any{"amount": 500} },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 403, otherShopper: 403, admin: 201, adminNoScope: 201, serviceAcct: 403},
			ok: func(t *testing.T, _ caller, r response, fx fixture) {
				if b := r.json(t); b["paymentId"] != fx.payment || b["amount"].(map[string]any)["amount"] != 500.0 {
					t.Errorf("refund: %v", b)
				}
			},
		},
		{
			name: "list all", method: "GET", path: func(fixture) string { return "/api/payments/admin/all" },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 403, otherShopper: 403, admin: 200, adminNoScope: 403, serviceAcct: 403},
			ok: func(t *testing.T, _ caller, r response, fx fixture) {
				if got := r.list(t); len(got) != 1 || got[0]["id"] != fx.payment {
					t.Errorf("all payments: %v", got)
				}
			},
		},
		{
			name: "audit", method: "GET", path: func(fixture) string { return "/api/payments/admin/audit" },
			want: map[caller]int{anonymous: 401, wrongAudience: 401, owner: 403, otherShopper: 403, admin: 200, adminNoScope: 200, serviceAcct: 403},
		},
	}
	for _, rt := range routes {
		for _, as := range callers {
			t.Run(rt.name+"/"+string(as), func(t *testing.T) {
				want, ok := rt.want[as]
				if !ok {
					t.Fatalf("the matrix has no expectation for %s", as)
				}
				e := newEnv(t, iss, toks)
				paymentID, _ := e.paid(2599)
				fx := fixture{payment: paymentID, order: e.orders.add(aliceSub, "pending", 1250)}
				var body any
				if rt.body != nil {
					body = rt.body(fx)
				}
				key := ""
				if rt.key {
					key = uuid.NewString()
				}
				before := e.dump()
				r := e.call(req{method: rt.method, path: rt.path(fx), as: as, body: body, key: key})
				if r.status != want {
					t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
				}
				after := e.dump()
				switch {
				case r.status >= 400:
					r.problem(t)
					if after != before {
						t.Fatalf("a refused call changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
					}
					if r.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Fatalf("401 without a bearer challenge")
					}
				case rt.method == "GET" && after != before:
					t.Fatal("a read changed the store")
				case rt.method == "POST" && after == before:
					t.Fatal("a successful write changed nothing")
				}
				if r.status < 400 && rt.ok != nil {
					rt.ok(t, as, r, fx)
				}
			})
		}
	}
}
