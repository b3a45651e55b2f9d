package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/reconcile"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/testkit"
)

const secret = "order-test-secret"

// realm is the fake Keycloak: testkit's issuer plus a client-credentials token endpoint
// that counts what it hands out, and an "internal" URL in front of it, as a container
// network would have.
type realm struct {
	iss      *testkit.Issuer
	internal string
	fetches  atomic.Int64
	lifetime atomic.Int64 // expires_in of the tokens handed out, in seconds
}

func newRealm(t *testing.T, lifetime int64) *realm {
	r := &realm{iss: testkit.NewIssuer(t)}
	r.lifetime.Store(lifetime)
	r.iss.Handle(t, "POST /realms/shop/protocol/openid-connect/token", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		id, sec, ok := req.BasicAuth()
		if !ok || id != "order-service" || sec != secret || req.FormValue("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthorized_client"}`)
			return
		}
		r.fetches.Add(1)
		tok := r.iss.Token(t, r.iss.Service("order-service", "payment-service", "SERVICE"))
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": r.lifetime.Load()})
	})
	issuer, _ := url.Parse(r.iss.URL)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: issuer.Scheme, Host: issuer.Host}))
	t.Cleanup(proxy.Close)
	r.internal = proxy.URL + "/realms/shop"
	return r
}

// lookup is one call the fake payment service's internal listener received.
type lookup struct {
	peers  []string
	client string
	token  string
}

// fakePayment plays the payment service: its public API approves every charge (reading the
// amount from the order service with the shopper's token, as the real one does) but
// answers too late for the checkout; its internal listener, behind mutual TLS with the
// payment service's certificate, lists an order's payments to callers with a valid token.
type fakePayment struct {
	orderURL         string // the order service's public API, set once it listens
	public, internal string

	mu       sync.Mutex
	payments map[string]map[string]any // by order id
	lookups  []lookup
}

func newFakePayment(t *testing.T, r *realm, id *mtls.Identity, answerAfter time.Duration) *fakePayment {
	f := &fakePayment{payments: map[string]map[string]any{}}
	public := http.NewServeMux()
	public.HandleFunc("POST /api/payments", func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			OrderID string `json:"orderId"`
		}
		_ = json.NewDecoder(req.Body).Decode(&body)
		get, _ := http.NewRequest(http.MethodGet, f.orderURL+"/api/orders/"+body.OrderID, nil)
		get.Header.Set("Authorization", req.Header.Get("Authorization"))
		resp, err := http.DefaultClient.Do(get)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var o struct {
			Total map[string]any `json:"total"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		p := map[string]any{"id": uuid.NewString(), "orderId": body.OrderID, "amount": o.Total, "status": "approved"}
		f.mu.Lock()
		f.payments[body.OrderID] = p
		f.mu.Unlock()
		time.Sleep(answerAfter) // charged, but the checkout has stopped waiting
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(p)
	})
	pub := httptest.NewServer(public)
	t.Cleanup(pub.Close)
	f.public = pub.URL

	verifier, err := authn.NewVerifier(authn.Config{Issuer: r.iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"payment-service"}})
	if err != nil {
		t.Fatal(err)
	}
	internal := http.NewServeMux()
	internal.HandleFunc("GET /internal/payments", func(w http.ResponseWriter, req *http.Request) {
		// Every request is recorded, verified or not: some tests want none at all.
		token, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		l := lookup{token: token}
		for _, u := range req.TLS.VerifiedChains[0][0].URIs {
			l.peers = append(l.peers, u.String())
		}
		p, err := verifier.Verify(req.Context(), token)
		if err == nil {
			l.client = p.ClientID
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lookups = append(f.lookups, l)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		list := []any{}
		if pay, ok := f.payments[req.URL.Query().Get("orderId")]; ok {
			list = append(list, pay)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: internal, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, id.ServerConfig())) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.internal = "https://" + ln.Addr().String()
	return f
}

func (f *fakePayment) calls() []lookup {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lookup(nil), f.lookups...)
}

// stack is the order service built from configuration and served on loopback ports, as
// Run does, in front of a fake Keycloak and a fake payment service.
type stack struct {
	svc    *service
	realm  *realm
	pay    *fakePayment
	public string
}

// grace is the reconciliation's grace period in these tests; the checkout waits less.
const grace = 300 * time.Millisecond

func startStack(t *testing.T, tokenLifetime int64) *stack {
	t.Helper()
	return startStackAgainst(t, tokenLifetime, "payment-service")
}

// startStackAgainst is startStack with the fake payment service's internal listener
// presenting a certificate of the CA for peer, which need not be the payment service.
func startStackAgainst(t *testing.T, tokenLifetime int64, peer string) *stack {
	t.Helper()
	r := newRealm(t, tokenLifetime)
	p := testkit.NewPKI(t)
	files := p.Files("order-service")
	pay := newFakePayment(t, r, p.Identity(peer), 2*grace)
	var cfg Config
	if err := config.Load(func(k string) string {
		return map[string]string{
			"OIDC_ISSUER": r.iss.URL, "OIDC_DISCOVERY_URL": r.internal,
			"ORDER_DB_DSN": filepath.Join(t.TempDir(), "order.db"),
			"ORDER_TLS_CA": files.CA, "ORDER_TLS_CERT": files.Cert, "ORDER_TLS_KEY": files.Key,
			"ORDER_CLIENT_SECRET": secret,
			"ORDER_PAYMENT_URL":   pay.public, "ORDER_PAYMENT_INTERNAL_URL": pay.internal,
			"ORDER_PAYMENT_TIMEOUT": (grace / 2).String(), "ORDER_RECONCILE_GRACE": grace.String(),
			// The loop stays out of the way; the tests run passes themselves.
			"ORDER_RECONCILE_INTERVAL": "1h",
			// The fake payment service reads the order with the token it is sent, as the
			// real one does after its own exchange; these tests are about reconciliation,
			// and the exchange is proven against Keycloak in integration/.
			"ORDER_TOKEN_EXCHANGE": "false",
			// lostCheckouts leaves one shopper with several orders awaiting their outcome.
			"ORDER_MAX_UNPAID": "10",
		}[k]
	}, &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	public, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	internal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.serve(ctx, public, internal) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		svc.close()
	})
	s := &stack{svc: svc, realm: r, pay: pay, public: "http://" + public.Addr().String()}
	pay.orderURL = s.public
	return s
}

// call sends a request to the public API as token and returns the status and body.
func (s *stack) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.public+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// lostCheckouts creates n orders as alice and pays each; every charge is approved, and
// every answer comes too late: the orders stay pending with their attempt in flight.
func (s *stack) lostCheckouts(t *testing.T, n int) []string {
	t.Helper()
	alice := s.realm.iss.Token(t, s.realm.iss.User("alice-sub", "alice", "USER"))
	var ids []string
	for range n {
		status, body := s.call(t, http.MethodPost, "/api/orders", alice,
			`{"items":[{"productId":"0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02","quantity":1}]}`)
		var o struct{ ID string }
		if status != http.StatusCreated || json.Unmarshal(body, &o) != nil {
			t.Fatalf("create order: %d %s", status, body)
		}
		if status, body := s.call(t, http.MethodPost, "/api/orders/"+o.ID+"/pay", alice,
			`{"card":{"number":"4242424242424242","expMonth":12,"expYear":2099,"cvc":"123"}}`); status != http.StatusGatewayTimeout {
			t.Fatalf("pay: %d %s, want the checkout to give up", status, body)
		}
		ids = append(ids, o.ID)
	}
	time.Sleep(grace + 50*time.Millisecond)
	return ids
}

func (s *stack) order(t *testing.T, id string) order.Order {
	t.Helper()
	o, err := s.svc.store.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestReconciliationPaysALostCheckoutOnceOverMutualTLS: the checkout of an order gave up
// on a charge the payment service approved. Two reconciliation passes of the service as
// Run wires it, at once, ask the payment service's internal listener with the order
// service's certificate and one client-credentials token (the token endpoint found by
// discovery through the internal Keycloak URL) and pay the order exactly once.
func TestReconciliationPaysALostCheckoutOnceOverMutualTLS(t *testing.T) {
	s := startStack(t, 300)
	ids := s.lostCheckouts(t, 4)
	for _, id := range ids {
		if o := s.order(t, id); o.Status != order.StatusPending || o.PaymentStartedAt.IsZero() {
			t.Fatalf("after the lost answer: %+v", o)
		}
	}

	reports := make([]reconcile.Report, 2)
	var wg sync.WaitGroup
	for i := range reports {
		wg.Go(func() {
			rep, err := s.svc.reconciler.Once(context.Background())
			if err != nil {
				t.Error(err)
			}
			reports[i] = rep
		})
	}
	wg.Wait()
	if paid := reports[0].Paid + reports[1].Paid; paid != len(ids) || reports[0].Failed+reports[1].Failed != 0 {
		t.Fatalf("reports %+v: want %d orders paid once each", reports, len(ids))
	}
	for _, id := range ids {
		o := s.order(t, id)
		s.pay.mu.Lock()
		want := s.pay.payments[id]["id"]
		s.pay.mu.Unlock()
		if o.Status != order.StatusPaid || o.PaymentID != want {
			t.Fatalf("order %s: %s by %q, want paid by %v", id, o.Status, o.PaymentID, want)
		}
	}
	calls := s.pay.calls()
	if len(calls) < len(ids) {
		t.Fatalf("%d lookups for %d orders", len(calls), len(ids))
	}
	for _, c := range calls {
		if len(c.peers) != 1 || c.peers[0] != "spiffe://shop/order-service" || c.client != "order-service" || c.token != calls[0].token {
			t.Fatalf("lookup from %v with a token of %q (same token: %v)", c.peers, c.client, c.token == calls[0].token)
		}
	}
	if n := s.realm.fetches.Load(); n != 1 {
		t.Fatalf("%d lookups fetched %d tokens, want 1", len(calls), n)
	}
	if rep, _ := s.svc.reconciler.Once(context.Background()); rep != (reconcile.Report{}) {
		t.Fatalf("a later pass found work: %+v", rep)
	}
}

// TestTheReconcilersTokenIsRenewedWhenItExpires: a token close to its expiry is not used
// for another lookup; the next pass fetches a new one.
func TestTheReconcilersTokenIsRenewedWhenItExpires(t *testing.T) {
	// 31s of life is inside svcauth's 30s early-refresh window after one second.
	s := startStack(t, 31)
	s.lostCheckouts(t, 1)
	if rep, err := s.svc.reconciler.Once(context.Background()); err != nil || rep.Paid != 1 {
		t.Fatalf("first pass: %+v %v", rep, err)
	}
	time.Sleep(1100 * time.Millisecond)
	s.lostCheckouts(t, 1)
	if rep, err := s.svc.reconciler.Once(context.Background()); err != nil || rep.Paid != 1 {
		t.Fatalf("second pass: %+v %v", rep, err)
	}
	calls := s.pay.calls()
	if n := s.realm.fetches.Load(); n != 2 || calls[len(calls)-1].token == calls[0].token {
		t.Fatalf("after expiry: %d fetches, token renewed: %v", n, calls[len(calls)-1].token != calls[0].token)
	}
}

// TestTheReconciliationTalksOnlyToThePaymentService: a server at the payment service's
// internal URL with a valid certificate of the CA, for localhost, but of another service,
// is refused in the handshake. No lookup reaches it, so neither does the order service's
// token, and the lost checkout is left for a later pass.
func TestTheReconciliationTalksOnlyToThePaymentService(t *testing.T) {
	s := startStackAgainst(t, 300, "gateway")
	ids := s.lostCheckouts(t, 1)
	rep, err := s.svc.reconciler.Once(context.Background())
	if err != nil || rep.Failed != 1 || rep.Paid != 0 {
		t.Fatalf("pass against an impostor: %+v %v, want the order failed", rep, err)
	}
	if calls := s.pay.calls(); len(calls) != 0 {
		t.Fatalf("the impostor received %d lookups, from %v", len(calls), calls[0].peers)
	}
	if o := s.order(t, ids[0]); o.Status != order.StatusPending {
		t.Fatalf("order %s is %s, want still pending", o.ID, o.Status)
	}
}
