package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"example.com/shop/order/internal/httpapi"
	"example.com/shop/order/internal/order"
	"example.com/shop/platform/devca"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/testkit"
)

// internalEnv is the order service's internal listener on e's database, served over
// mutual TLS as app.Run does, and the payment service as its client.
type internalEnv struct {
	*env
	pki     *testkit.PKI
	base    string
	payment *http.Client // the payment service's certificate
	token   string       // the payment service's client-credentials token
}

func newInternalEnv(t *testing.T, r *realm) *internalEnv {
	t.Helper()
	e := newEnv(t, r)
	p := testkit.NewPKI(t)
	internal := httpapi.NewInternal(httpapi.InternalDeps{Store: e.store, Authenticate: r.verifier.Middleware(e.log), Logger: e.log})
	return &internalEnv{
		env: e, pki: p, base: testkit.ServeInternal(t, internal.App, p.Identity("order-service")),
		payment: tlsClient(p.Identity("payment-service").ClientConfig()),
		token:   r.service,
	}
}

// tlsClient calls with the given TLS configuration, one connection per request so every
// call makes its own handshake.
func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// notify posts body to path on the internal listener as client with token.
func (ie *internalEnv) notify(client *http.Client, token, path string, body any) response {
	ie.t.Helper()
	raw, ok := body.(string)
	if !ok {
		b, _ := json.Marshal(body)
		raw = string(b)
	}
	req, _ := http.NewRequest(http.MethodPost, ie.base+path, strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		ie.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// report sends a notice as the payment service, expecting want.
func (ie *internalEnv) report(path string, body any, want int) orderOf {
	ie.t.Helper()
	resp := ie.notify(ie.payment, ie.token, path, body)
	if resp.status != want {
		ie.t.Fatalf("%s %v: %s, want %d", path, body, resp, want)
	}
	var got orderOf
	if want == http.StatusOK {
		resp.decode(ie.t, &got)
	} else {
		resp.problem(ie.t)
	}
	return got
}

// TestInternalListenerAdmitsOnlyThePaymentService: the internal listener needs a client
// certificate from the internal CA, of a service the route allows, and that service's own
// client-credentials token with the SERVICE role. Every other combination is refused: at
// the handshake, with 401 (no or bad token) or with 403 (wrong caller); none reaches the
// handler or changes anything.
func TestInternalListenerAdmitsOnlyThePaymentService(t *testing.T) {
	r := newRealm(t)
	ie := newInternalEnv(t, r)
	now := time.Now().Add(-time.Minute)
	orderID := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1}).ID
	pay := ie.do(http.MethodPost, "/api/orders/"+orderID+"/pay", r.alice, cardBody(cardApproved))
	var paid orderOf
	pay.decode(t, &paid)
	path := "/internal/orders/" + orderID + "/refunded"
	body := map[string]any{"paymentId": paid.PaymentID, "amount": 100, "fullyRefunded": false}

	p := ie.pki
	webapp := tlsClient(p.Identity("webapp").ClientConfig())
	orderSvc := tlsClient(p.Load(p.Issue(nil, "order-service", "order-client", now, time.Hour)).ClientConfig())
	expired := p.Load(p.Issue(nil, "payment-service", "expired", now.Add(-2*time.Hour), time.Hour))
	otherCA, err := devca.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign := p.Load(p.Issue(otherCA, "payment-service", "foreign", now, time.Hour))
	noCert := p.Load(p.Issue(nil, "payment-service", "no-cert", now, time.Hour)).ClientConfig()
	noCert.GetClientCertificate = nil

	before := ie.snapshot()
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":       noCert,
		"certificate from another CA": foreign.ClientConfig(),
		"expired certificate":         expired.ClientConfig(),
	} {
		req, _ := http.NewRequest(http.MethodPost, ie.base+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+ie.token)
		if resp, err := tlsClient(cfg).Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s: the handshake was accepted (status %d)", name, resp.StatusCode)
		}
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Post(strings.Replace(ie.base, "https:", "http:", 1)+path,
		"application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("a plaintext request was answered 200")
		}
	}

	cases := []struct {
		name   string
		client *http.Client
		token  string
		status int
	}{
		{"a certificate this route does not allow", webapp, ie.token, 403},
		{"the order service's own certificate and token", orderSvc, r.iss.Token(t, r.iss.Service("order-service", "order-service", "SERVICE")), 403},
		{"no token", ie.payment, "", 401},
		{"a token for another audience", ie.payment, r.iss.Token(t, r.iss.Service("payment-service", "account", "SERVICE")), 401},
		{"a shopper's token", ie.payment, r.alice, 403},
		{"an admin's token", ie.payment, r.admin, 403},
		{"the payment service's client without the SERVICE role", ie.payment, r.iss.Token(t, r.iss.Service("payment-service", "order-service")), 403},
		{"another service's token with the payment service's certificate", ie.payment, r.iss.Token(t, r.iss.Service("order-service", "order-service", "SERVICE")), 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := ie.notify(tc.client, tc.token, path, body)
			if resp.status != tc.status {
				t.Fatalf("status %s, want %d", resp, tc.status)
			}
			resp.problem(t)
		})
	}
	if ie.snapshot() != before {
		t.Fatal("a refused call changed the database")
	}
	if got := ie.report(path, body, http.StatusOK); got.Refunded.Amount != 100 {
		t.Fatalf("the payment service's notice: %+v", got)
	}
}

// TestRefundReports: the payment service reports the total refunded so far; a partial
// refund keeps the order paid, a full one makes it refunded, and repeats change nothing.
func TestRefundReports(t *testing.T) {
	r := newRealm(t)
	ie := newInternalEnv(t, r)
	o := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 2})
	path := "/internal/orders/" + o.ID + "/refunded"
	ie.report(path, `{"paymentId":"p","amount":100,"fullyRefunded":false}`, 409) // still pending
	resp := ie.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
	var paid orderOf
	resp.decode(t, &paid)
	total := paid.Total.Amount
	pid := paid.PaymentID

	ie.report(path, `{"paymentId":"someone-elses","amount":100,"fullyRefunded":false}`, 409)
	ie.report(path, `{"paymentId":"`+pid+`","amount":100}`, 422)
	ie.report(path, `{"paymentId":"`+pid+`","amount":100,"fullyRefunded":true}`, 422)
	ie.report(path, `{"paymentId":"`+pid+`","amount":0,"fullyRefunded":false}`, 422)
	ie.report(path, `{"paymentId":"`+pid+`","amount":"100","fullyRefunded":false}`, 400)
	ie.report("/internal/orders/"+uuid.NewString()+"/refunded", `{"paymentId":"`+pid+`","amount":100,"fullyRefunded":false}`, 404)

	if got := ie.report(path, `{"paymentId":"`+pid+`","amount":100,"fullyRefunded":false}`, 200); got.Status != "paid" || got.Refunded.Amount != 100 {
		t.Fatalf("partial: %+v", got)
	}
	if got := ie.report(path, `{"paymentId":"`+pid+`","amount":100,"fullyRefunded":false}`, 200); got.Refunded.Amount != 100 {
		t.Fatalf("repeat: %+v", got)
	}
	full := `{"paymentId":"` + pid + `","amount":` + strconv.FormatInt(total, 10) + `,"fullyRefunded":true}`
	if got := ie.report(path, full, 200); got.Status != "refunded" || got.Refunded.Amount != total {
		t.Fatalf("full: %+v", got)
	}
	before := ie.snapshot()
	ie.report(path, full, 200)
	if ie.snapshot() != before {
		t.Fatal("a repeated report changed the database")
	}
	var log []auditOf
	ie.do(http.MethodGet, "/api/orders/admin/audit", r.admin, nil).decode(t, &log)
	if len(log) != 2 || log[0].Action != order.ActionOrderRefund || log[1].Action != order.ActionOrderRefund ||
		log[0].Actor.Username != "payment-service" {
		t.Fatalf("audit %+v: want one entry per change, by the payment service", log)
	}
}

// TestPaidNotices: the payment service's notice of an approval pays an order whose
// checkout lost the answer, once; it changes nothing when the checkout recorded it; it
// never pays an order for another amount, nor a second time by another payment, nor one
// that was cancelled (which is logged for a refund).
func TestPaidNotices(t *testing.T) {
	r := newRealm(t)
	ie := newInternalEnv(t, r)
	ctx := context.Background()
	lost := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 2})
	// The checkout sent the charge, then never heard back.
	if err := ie.store.StartPaymentAttempt(ctx, lost.ID); err != nil {
		t.Fatal(err)
	}
	path := "/internal/orders/" + lost.ID + "/paid"
	pay := uuid.NewString()
	total := map[string]any{"amount": lost.Total.Amount, "currency": "EUR"}

	before := ie.snapshot()
	ie.report(path, map[string]any{"paymentId": pay, "amount": map[string]any{"amount": lost.Total.Amount - 1, "currency": "EUR"}}, 422)
	ie.report(path, map[string]any{"paymentId": pay, "amount": map[string]any{"amount": lost.Total.Amount, "currency": "USD"}}, 422)
	ie.report(path, map[string]any{"paymentId": "not-a-uuid", "amount": total}, 422)
	ie.report(path, map[string]any{"paymentId": pay}, 422)
	ie.report(path, `{"paymentId": 7}`, 400)
	ie.report("/internal/orders/"+uuid.NewString()+"/paid", map[string]any{"paymentId": pay, "amount": total}, 404)
	if ie.snapshot() != before {
		t.Fatal("a refused notice changed the database")
	}
	if !strings.Contains(ie.logs.String(), "another amount than the order's total") {
		t.Fatal("an approval of another amount was not logged")
	}

	got := ie.report(path, map[string]any{"paymentId": pay, "amount": total}, 200)
	stored := ie.storedOrder(lost.ID)
	if got.Status != "paid" || got.PaymentID != pay || stored.Status != order.StatusPaid || !stored.PaymentStartedAt.IsZero() {
		t.Fatalf("after the notice: %+v / %+v", got, stored)
	}
	settled := ie.snapshot()
	ie.report(path, map[string]any{"paymentId": pay, "amount": total}, 200)
	if ie.snapshot() != settled {
		t.Fatal("a repeated notice changed the database")
	}
	ie.report(path, map[string]any{"paymentId": uuid.NewString(), "amount": total}, 409)

	var log []auditOf
	ie.do(http.MethodGet, "/api/orders/admin/audit", r.admin, nil).decode(t, &log)
	if len(log) != 1 || log[0].Action != order.ActionOrderPaymentSettled || log[0].Resource != "order/"+lost.ID ||
		log[0].Detail["paymentId"] != pay || log[0].Detail["by"] != "payment notice" || log[0].Actor.Username != "payment-service" {
		t.Fatalf("audit %+v: want one settlement, by the payment service", log)
	}

	// The usual case: the checkout recorded the approval; its notice changes nothing.
	normal := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	var paid orderOf
	ie.do(http.MethodPost, "/api/orders/"+normal.ID+"/pay", r.alice, cardBody(cardApproved)).decode(t, &paid)
	quiet := ie.snapshot()
	ie.report("/internal/orders/"+normal.ID+"/paid", map[string]any{"paymentId": paid.PaymentID, "amount": paid.Total}, 200)
	if ie.snapshot() != quiet {
		t.Fatal("the notice of an approval the checkout recorded changed the database")
	}

	cancelled := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 2})
	if resp := ie.do(http.MethodPost, "/api/orders/"+cancelled.ID+"/cancel", r.alice, nil); resp.status != 200 {
		t.Fatal(resp)
	}
	late := uuid.NewString()
	ie.report("/internal/orders/"+cancelled.ID+"/paid", map[string]any{"paymentId": late, "amount": total}, 409)
	if !strings.Contains(ie.logs.String(), "must be refunded") || !strings.Contains(ie.logs.String(), late) {
		t.Fatal("an approval for a cancelled order was not logged for a refund")
	}

	// The shopper deleted the order that looked unpaid: 409, final, unlike an unknown
	// order's 404, which the payment service retries.
	deleted := ie.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 2})
	if resp := ie.do(http.MethodDelete, "/api/orders/"+deleted.ID, r.alice, nil); resp.status != 204 {
		t.Fatal(resp)
	}
	gone := uuid.NewString()
	ie.report("/internal/orders/"+deleted.ID+"/paid", map[string]any{"paymentId": gone, "amount": total}, 409)
	ie.report("/internal/orders/"+deleted.ID+"/refunded", map[string]any{"paymentId": gone, "amount": 100, "fullyRefunded": false}, 409)
	if !strings.Contains(ie.logs.String(), gone) {
		t.Fatal("an approval for a deleted order was not logged for a refund")
	}
}

// TestEveryInternalRouteIsInTheTable: the internal app serves its table and nothing else,
// each route behind the caller allowlist, authentication, the SERVICE policy and the
// token-certificate binding.
func TestEveryInternalRouteIsInTheTable(t *testing.T) {
	e := newEnv(t, newRealm(t))
	internal := httpapi.NewInternal(httpapi.InternalDeps{Store: e.store, Authenticate: func(c *fiber.Ctx) error { return c.Next() }})
	table := map[string]svcauth.Route{}
	for _, rt := range internal.Routes {
		table[rt.Method+" "+rt.Path] = rt
		if len(rt.Callers) == 0 {
			t.Errorf("%s %s admits no caller", rt.Method, rt.Path)
		}
	}
	served := map[string]bool{}
	for _, r := range internal.App.GetRoutes(true) {
		if slices.Contains(probes, r.Path) {
			continue
		}
		key := r.Method + " " + r.Path
		if _, ok := table[key]; !ok {
			t.Errorf("%s is served but not in the internal route table", key)
			continue
		}
		// mtls.Allow, authenticate, the SERVICE policy, the binding, the handler.
		if len(r.Handlers) != 5 {
			t.Errorf("%s runs %d handlers, want 5", key, len(r.Handlers))
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
// routes, each with the SPIFFE ids of its callers.
func TestInternalOpenAPIMatchesTheTable(t *testing.T) {
	raw, err := os.ReadFile("../../api/internal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	for path, item := range spec.Paths {
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Callers []string `yaml:"x-callers"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			documented[strings.ToUpper(method)+" "+path] = op.Callers
		}
	}
	e := newEnv(t, newRealm(t))
	for _, rt := range httpapi.NewInternal(httpapi.InternalDeps{Store: e.store}).Routes {
		key := rt.Method + " " + pathParam.ReplaceAllString(rt.Path, "{$1}")
		callers, ok := documented[key]
		if !ok {
			t.Errorf("%s is in the internal route table but not in internal.yaml", key)
			continue
		}
		delete(documented, key)
		if !slices.Equal(callers, rt.Callers) {
			t.Errorf("%s: internal.yaml says x-callers %v, the table %v", key, callers, rt.Callers)
		}
	}
	for key := range documented {
		t.Errorf("%s is in internal.yaml but not in the internal route table", key)
	}
}
