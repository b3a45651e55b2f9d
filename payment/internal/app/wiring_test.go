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

	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/testkit"
)

const secret = "payment-test-secret"

// realm is the fake Keycloak: testkit's issuer plus a client-credentials token endpoint
// that counts what it hands out, and an "internal" URL in front of it, as a container
// network would have.
type realm struct {
	iss      *testkit.Issuer
	internal string // another URL for the same realm, like http://keycloak:8080/realms/shop
	fetches  atomic.Int64
	lifetime atomic.Int64 // expires_in of the tokens handed out, in seconds
}

func newRealm(t *testing.T) *realm {
	r := &realm{iss: testkit.NewIssuer(t)}
	r.lifetime.Store(300)
	r.iss.Handle(t, "POST /realms/shop/protocol/openid-connect/token", func(w http.ResponseWriter, req *http.Request) {
		id, sec, ok := req.BasicAuth()
		if !ok || id != "payment-service" || sec != secret || req.FormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthorized_client"}`)
			return
		}
		r.fetches.Add(1)
		tok := r.iss.Token(t, r.iss.Service("payment-service", "order-service", "SERVICE"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": r.lifetime.Load()})
	})
	issuer, _ := url.Parse(r.iss.URL)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: issuer.Scheme, Host: issuer.Host}))
	t.Cleanup(proxy.Close)
	r.internal = proxy.URL + "/realms/shop"
	return r
}

// notice is what the fake order service's internal listener received.
type notice struct {
	path   string
	peers  []string
	client string
	token  string
	body   map[string]any
}

// fakeOrder plays the order service: a public API that shows one pending order, and an
// internal listener behind mutual TLS (the order service's certificate, a client
// certificate from the CA required) that records the notices it receives.
type fakeOrder struct {
	public, internal string

	mu      sync.Mutex
	notices []notice
}

func newFakeOrder(t *testing.T, r *realm, id *mtls.Identity) *fakeOrder {
	f := &fakeOrder{}
	public := http.NewServeMux()
	public.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": req.PathValue("id"), "userId": "alice-sub", "status": "pending",
			"total": map[string]any{"amount": 2599, "currency": "EUR"}})
	})
	pub := httptest.NewServer(public)
	t.Cleanup(pub.Close)
	f.public = pub.URL

	verifier, err := authn.NewVerifier(authn.Config{Issuer: r.iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"order-service"}})
	if err != nil {
		t.Fatal(err)
	}
	internal := http.NewServeMux()
	internal.HandleFunc("POST /internal/orders/{id}/{kind}", func(w http.ResponseWriter, req *http.Request) {
		// Every request is recorded, verified or not: some tests want none at all.
		token, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		n := notice{path: req.URL.Path, token: token}
		for _, u := range req.TLS.VerifiedChains[0][0].URIs {
			n.peers = append(n.peers, u.String())
		}
		_ = json.NewDecoder(req.Body).Decode(&n.body)
		p, err := verifier.Verify(req.Context(), token)
		if err == nil {
			n.client = p.ClientID
		}
		f.mu.Lock()
		f.notices = append(f.notices, n)
		f.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
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

func (f *fakeOrder) received() []notice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]notice(nil), f.notices...)
}

// waitFor polls until n notices have arrived.
func (f *fakeOrder) waitFor(t *testing.T, n int) []notice {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notices arrived", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stack is the payment service built from configuration and served on loopback ports, as
// Run does, in front of a fake Keycloak and a fake order service.
type stack struct {
	svc      *service
	realm    *realm
	order    *fakeOrder
	public   string
	internal string
	files    mtls.Files
}

func startStack(t *testing.T, lifetime int64) *stack {
	t.Helper()
	return startStackAgainst(t, lifetime, "order-service")
}

// startStackAgainst is startStack with the fake order service's internal listener
// presenting a certificate of the CA for peer, which need not be the order service.
func startStackAgainst(t *testing.T, lifetime int64, peer string) *stack {
	t.Helper()
	r := newRealm(t)
	r.lifetime.Store(lifetime)
	p := testkit.NewPKI(t)
	files := p.Files("payment-service")
	order := newFakeOrder(t, r, p.Identity(peer))
	var cfg Config
	if err := config.Load(func(k string) string {
		return map[string]string{
			"OIDC_ISSUER": r.iss.URL, "OIDC_DISCOVERY_URL": r.internal,
			"PAYMENT_DB_DSN": filepath.Join(t.TempDir(), "payment.db"),
			"PAYMENT_TLS_CA": files.CA, "PAYMENT_TLS_CERT": files.Cert, "PAYMENT_TLS_KEY": files.Key,
			"PAYMENT_CLIENT_SECRET": secret,
			"PAYMENT_ORDER_URL":     order.public, "PAYMENT_ORDER_INTERNAL_URL": order.internal,
			// These tests are about notices over mutual TLS; the exchange of the caller's
			// token is proven against Keycloak in integration/.
			"PAYMENT_TOKEN_EXCHANGE": "false",
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
	return &stack{svc: svc, realm: r, order: order, public: "http://" + public.Addr().String(),
		internal: "https://" + internal.Addr().String(), files: files}
}

// call sends a request to the public API and returns the status and decoded body.
func (s *stack) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.public+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// charge pays a new order as alice and returns the payment id.
func (s *stack) charge(t *testing.T) string {
	t.Helper()
	alice := s.realm.iss.Token(t, s.realm.iss.User("alice-sub", "alice", "USER"))
	status, p := s.call(t, http.MethodPost, "/api/payments", alice, map[string]any{"orderId": uuid.NewString(),
		"card": map[string]any{"number": "4242424242424242", "expMonth": 12, "expYear": time.Now().Year() + 2, "cvc": "123"}})
	if status != http.StatusCreated {
		t.Fatalf("charge: %d %v", status, p)
	}
	return p["id"].(string)
}

// TestNoticesGoOverMutualTLSWithOneServiceToken: the service as Run wires it reports
// approvals and refunds to the order service's internal listener, presenting its
// certificate and its own client-credentials token, never the shopper's or the admin's.
// The token is fetched once (the token endpoint found by discovery through the internal
// Keycloak URL) and shared by every notice.
func TestNoticesGoOverMutualTLSWithOneServiceToken(t *testing.T) {
	s := startStack(t, 300)
	const charges = 8
	var payments []string
	for range charges {
		payments = append(payments, s.charge(t))
	}
	admin := s.realm.iss.Token(t, s.realm.iss.User("ada-sub", "ada", "USER", "ADMIN"))
	if status, body := s.call(t, http.MethodPost, "/api/payments/"+payments[0]+"/refunds", admin, map[string]any{"amount": 599}); status != http.StatusCreated {
		t.Fatalf("refund: %d %v", status, body)
	}
	got := s.order.waitFor(t, charges+1)
	kinds := map[string]int{}
	for _, n := range got {
		kinds[n.path[strings.LastIndex(n.path, "/")+1:]]++
		if len(n.peers) != 1 || n.peers[0] != "spiffe://shop/payment-service" || n.client != "payment-service" {
			t.Fatalf("notice %s came from %v with a token of %q", n.path, n.peers, n.client)
		}
		if n.token != got[0].token {
			t.Fatal("the notices carried different tokens: one was fetched per call")
		}
	}
	if kinds["paid"] != charges || kinds["refunded"] != 1 {
		t.Fatalf("notices by kind: %v", kinds)
	}
	if n := s.realm.fetches.Load(); n != 1 {
		t.Fatalf("%d notices fetched %d tokens, want 1", len(got), n)
	}
}

// TestTheServiceTokenIsRenewedWhenItExpires: a token close to its expiry is not used for
// another notice; the next notice fetches a new one.
func TestTheServiceTokenIsRenewedWhenItExpires(t *testing.T) {
	// 31s of life is inside svcauth's 30s early-refresh window after one second.
	s := startStack(t, 31)
	s.charge(t)
	first := s.order.waitFor(t, 1)
	if n := s.realm.fetches.Load(); n != 1 {
		t.Fatalf("fetches after the first notice: %d", n)
	}
	time.Sleep(1100 * time.Millisecond)
	s.charge(t)
	second := s.order.waitFor(t, 2)
	if n := s.realm.fetches.Load(); n != 2 || second[1].token == first[0].token {
		t.Fatalf("after expiry: %d fetches, token renewed: %v", n, second[1].token != first[0].token)
	}
}

// TestTheInternalListenerWantsAClientCertificate: what build and serve put on the internal
// port refuses a client without a certificate at the handshake, and answers one with a
// certificate of the CA (here the payment service's own, which no route allows) with 403.
func TestTheInternalListenerWantsAClientCertificate(t *testing.T) {
	s := startStack(t, 300)
	id, err := mtls.Load(s.files)
	if err != nil {
		t.Fatal(err)
	}
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	url := s.internal + "/internal/payments?orderId=" + uuid.NewString()
	noCert := id.ClientConfig()
	noCert.GetClientCertificate = nil
	if resp, err := client(noCert).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d without a client certificate", resp.StatusCode)
	}
	resp, err := client(id.ClientConfig()).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a certificate no route allows: %d, want 403", resp.StatusCode)
	}
}

// TestNoticesGoOnlyToTheOrderService: a server at the order service's internal URL with a
// valid certificate of the CA, for localhost, but of another service, is refused in the
// handshake. No notice reaches it, so neither does the payment service's token; the
// notice stays in the outbox for a later attempt.
func TestNoticesGoOnlyToTheOrderService(t *testing.T) {
	s := startStackAgainst(t, 300, "gateway")
	s.charge(t)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Due within the hour: whatever the relay's backoff after a failed attempt.
		due, err := s.svc.store.DueNotices(ctx, time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 1 && due[0].Attempts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery recorded: %+v", due)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.order.received(); len(got) != 0 {
		t.Fatalf("the impostor received %d notices, from %v", len(got), got[0].peers)
	}
	if n, err := s.svc.store.PendingNotices(ctx); err != nil || n != 1 {
		t.Fatalf("pending notices: %d %v, want the one kept for later", n, err)
	}
}
