package httpapi_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/testkit"
)

// serveInternal serves the payment service's internal app of e on a loopback TLS listener
// with the identity of the payment service, as app.Run does, and returns its base URL.
func serveInternal(t *testing.T, e *env, iss *testkit.Issuer, id *mtls.Identity) string {
	t.Helper()
	verifier, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"payment-service"}})
	if err != nil {
		t.Fatal(err)
	}
	app := httpapi.NewInternal(httpapi.InternalOptions{Service: e.svc, Authenticate: verifier.Middleware(quiet), Logger: quiet})
	return testkit.ServeInternal(t, app, id)
}

// tlsClient calls with the given TLS configuration, one connection per request so every
// call makes its own handshake.
func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// TestInternalListenerAdmitsOnlyTheOrderService: the internal listener needs a client
// certificate from the internal CA, of a service the route allows, and that service's own
// client-credentials token with the SERVICE role. Every other combination is refused: at
// the handshake, with 401 (no or bad token) or with 403 (wrong caller).
func TestInternalListenerAdmitsOnlyTheOrderService(t *testing.T) {
	iss := testkit.NewIssuer(t)
	e := newEnv(t, iss, tokens(t, iss))
	paymentID, order := e.paid(2599)
	p := testkit.NewPKI(t)
	now := time.Now().Add(-time.Minute)
	base := serveInternal(t, e, iss, p.Identity("payment-service"))
	url := base + "/internal/payments?orderId=" + order

	orderID := p.Identity("order-service")
	webappID := p.Identity("webapp")
	expiredID := p.Load(p.Issue(nil, "order-service", "expired", now.Add(-2*time.Hour), time.Hour))
	otherCA, err := devca.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignID := p.Load(p.Issue(otherCA, "order-service", "foreign", now, time.Hour))
	noCert := orderID.ClientConfig()
	noCert.GetClientCertificate = nil

	orderToken := iss.Token(t, iss.Service("order-service", "payment-service", "SERVICE"))
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":       noCert,
		"certificate from another CA": foreignID.ClientConfig(),
		"expired certificate":         expiredID.ClientConfig(),
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+orderToken)
		if resp, err := tlsClient(cfg).Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s: the handshake was accepted (status %d)", name, resp.StatusCode)
		}
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(strings.Replace(url, "https:", "http:", 1)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("a plaintext request was answered 200")
		}
	}

	cases := []struct {
		name   string
		id     *mtls.Identity
		token  string
		status int
	}{
		{"the order service", orderID, orderToken, 200},
		{"a certificate this route does not allow", webappID, orderToken, 403},
		{"the order service without a token", orderID, "", 401},
		{"the order service with a token for another audience", orderID,
			iss.Token(t, iss.Service("order-service", "account", "SERVICE")), 401},
		{"a shopper's token", orderID, e.tokens[owner], 403},
		{"an admin's token", orderID, e.tokens[admin], 403},
		{"the order service's client without the SERVICE role", orderID,
			iss.Token(t, iss.Service("order-service", "payment-service")), 403},
		{"another service's token with the order service's certificate", orderID,
			iss.Token(t, iss.Service("webapp", "payment-service", "SERVICE")), 403},
		{"the payment service's own token with the order service's certificate", orderID,
			iss.Token(t, iss.Service("payment-service", "payment-service", "SERVICE")), 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := tlsClient(tc.id.ClientConfig()).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				if resp.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(body), paymentID) {
					t.Fatalf("refusal: %s %s", resp.Header.Get("Content-Type"), body)
				}
				return
			}
			var got []map[string]any
			if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 || got[0]["id"] != paymentID || got[0]["status"] != "approved" {
				t.Fatalf("payments of the order: %s", body)
			}
		})
	}
}

// TestInternalPaymentsOfOrder: the reconciliation's view of an order: every payment of it,
// newest first, none of another order's; the order id is required and must be one.
func TestInternalPaymentsOfOrder(t *testing.T) {
	iss := testkit.NewIssuer(t)
	e := newEnv(t, iss, tokens(t, iss))
	order := e.orders.add(aliceSub, "pending", 1999)
	declined := e.charge(owner, order, processor.CardDeclined, uuid.NewString()).json(t)["paymentId"]
	approved := e.charge(owner, order, processor.CardApproved, uuid.NewString()).json(t)["id"]
	e.paid(500) // another order's payment
	p := testkit.NewPKI(t)
	base := serveInternal(t, e, iss, p.Identity("payment-service"))
	client := tlsClient(p.Identity("order-service").ClientConfig())
	token := iss.Token(t, iss.Service("order-service", "payment-service", "SERVICE"))
	get := func(query string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+"/internal/payments"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	status, body := get("?orderId=" + order)
	var got []map[string]any
	if status != 200 || json.Unmarshal(body, &got) != nil || len(got) != 2 ||
		got[0]["id"] != approved || got[0]["status"] != "approved" || got[1]["id"] != declined || got[1]["status"] != "declined" {
		t.Fatalf("%d %s", status, body)
	}
	if status, body := get("?orderId=" + uuid.NewString()); status != 200 || string(body) != "[]" {
		t.Fatalf("an order without payments: %d %s", status, body)
	}
	for _, q := range []string{"", "?orderId=", "?orderId=../admin"} {
		if status, body := get(q); status != 422 {
			t.Errorf("%q: %d %s", q, status, body)
		}
	}
}

// TestEveryInternalRouteIsInTheTable: the internal app serves its table and nothing else,
// each route behind the caller allowlist, authentication, the SERVICE policy and the
// token-certificate binding.
func TestEveryInternalRouteIsInTheTable(t *testing.T) {
	iss := testkit.NewIssuer(t)
	e := newEnv(t, iss, tokens(t, iss))
	app := httpapi.NewInternal(httpapi.InternalOptions{Service: e.svc, Authenticate: func(c *fiber.Ctx) error { return c.Next() }, Logger: quiet})
	table := map[string]svcauth.Route{}
	for _, r := range (&httpapi.Handlers{}).InternalRoutes() {
		table[r.Method+" "+r.Path] = r
		if len(r.Callers) == 0 {
			t.Errorf("%s %s admits no caller", r.Method, r.Path)
		}
	}
	served := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if slices.Contains(probes, r.Path) {
			continue
		}
		key := r.Method + " " + r.Path
		if r.Method == http.MethodHead {
			key = http.MethodGet + " " + r.Path
		}
		if _, ok := table[key]; !ok {
			t.Errorf("%s %s is served but not in the internal route table", r.Method, r.Path)
		}
		// mtls.Allow, authenticate, the SERVICE policy, the binding, the handler.
		if len(r.Handlers) != 5 {
			t.Errorf("%s %s runs %d handlers, want 5", r.Method, r.Path, len(r.Handlers))
		}
		served[key] = true
	}
	for key := range table {
		if !served[key] {
			t.Errorf("%s is in the internal route table but not served", key)
		}
	}
}

// TestInternalOpenAPIMatchesTheTable: api/internal.yaml documents exactly the internal
// routes, each with its callers.
func TestInternalOpenAPIMatchesTheTable(t *testing.T) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true // its schemas are the public document's
	doc, err := loader.LoadFromFile("../../api/internal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("api/internal.yaml is not valid OpenAPI 3: %v", err)
	}
	table := map[string]svcauth.Route{}
	for _, r := range (&httpapi.Handlers{}).InternalRoutes() {
		table[r.Method+" "+r.Path] = r
	}
	documented := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented++
			key := method + " " + path
			rt, ok := table[key]
			if !ok {
				t.Errorf("api/internal.yaml documents %s, which the internal route table lacks", key)
				continue
			}
			var callers []string
			raw, _ := json.Marshal(op.Extensions["x-callers"])
			_ = json.Unmarshal(raw, &callers)
			if !slices.Equal(callers, rt.Callers) {
				t.Errorf("%s: x-callers %v, the table allows %v", key, callers, rt.Callers)
			}
			if op.Responses.Status(http.StatusForbidden) == nil || op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s does not document 401 and 403", key)
			}
		}
	}
	if documented != len(table) {
		t.Errorf("api/internal.yaml documents %d operations, the table has %d", documented, len(table))
	}
}
