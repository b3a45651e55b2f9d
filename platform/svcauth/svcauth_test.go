package svcauth_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/shop/platform/mtls"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/testkit"
)

// TestTokenFetchedOnceAndRenewed: many calls share one token; when it nears expiry the
// next call fetches a new one.
func TestTokenFetchedOnceAndRenewed(t *testing.T) {
	iss := testkit.NewIssuer(t)
	var fetches atomic.Int64
	lifetime := atomic.Int64{}
	lifetime.Store(300)
	iss.Handle(t, "POST /realms/shop/protocol/openid-connect/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "order-service" || secret != "s3cret" || r.FormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unauthorized_client"}`, http.StatusUnauthorized)
			return
		}
		fetches.Add(1)
		tok := iss.Token(t, iss.Service("order-service", "payment-service", "SERVICE"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": lifetime.Load()})
	})
	ts := svcauth.TokenSource(context.Background(), svcauth.Config{
		TokenURL: iss.URL + "/protocol/openid-connect/token", ClientID: "order-service", ClientSecret: "s3cret",
		EarlyRefresh: 30 * time.Second,
	})
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := ts.Token(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("200 calls fetched %d tokens, want 1", n)
	}

	// A token that lives 31s is inside the 30s early-refresh window within a second.
	lifetime.Store(31)
	ts = svcauth.TokenSource(context.Background(), svcauth.Config{
		TokenURL: iss.URL + "/protocol/openid-connect/token", ClientID: "order-service", ClientSecret: "s3cret",
	})
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	second, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken == second.AccessToken || fetches.Load() != 3 {
		t.Fatalf("token not renewed before expiry (fetches %d)", fetches.Load())
	}

	bad := svcauth.TokenSource(context.Background(), svcauth.Config{
		TokenURL: iss.URL + "/protocol/openid-connect/token", ClientID: "order-service", ClientSecret: "wrong",
	})
	if _, err := bad.Token(); err == nil {
		t.Fatal("a wrong secret got a token")
	}
}

// internal is a reverse proxy in front of a fake realm: the name a container network gives
// Keycloak. It counts the requests that went through it, by path.
type internal struct {
	URL string // the realm under the proxy, like http://keycloak:8080/realms/shop

	mu   sync.Mutex
	hits map[string]int
}

func newInternal(t *testing.T, iss *testkit.Issuer) *internal {
	t.Helper()
	target, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	in := &internal{hits: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		in.hits[r.URL.Path]++
		in.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	in.URL = srv.URL + target.Path
	return in
}

func (in *internal) count(path string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hits[path]
}

// realmOf serves doc as the discovery document of a realm and returns the realm's URL.
func realmOf(t *testing.T, doc map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/realms/shop/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/realms/shop"
}

// TestDiscoverTokenURL: the endpoint comes from the realm's discovery document. Fetched
// through an internal URL, it is moved onto that URL (the document names the public one).
// A document that names another issuer than the one tokens carry is refused, and so is
// one naming no token endpoint.
func TestDiscoverTokenURL(t *testing.T) {
	iss := testkit.NewIssuer(t)
	in := newInternal(t, iss)
	ctx := t.Context()
	const tokenPath = "/protocol/openid-connect/token"
	for _, tc := range []struct{ issuer, discovery, want string }{
		{iss.URL, "", iss.URL + tokenPath},
		{iss.URL, in.URL, in.URL + tokenPath},
		{iss.URL, in.URL + "/", in.URL + tokenPath},
		{iss.URL + "/", in.URL, in.URL + tokenPath},
	} {
		if got, err := svcauth.DiscoverTokenURL(ctx, nil, tc.issuer, tc.discovery); err != nil || got != tc.want {
			t.Errorf("issuer %q, discovery at %q: %q %v, want %q", tc.issuer, tc.discovery, got, err, tc.want)
		}
	}

	evil := "http://evil.example/realms/shop"
	refused := map[string]struct{ issuer, discovery, want string }{
		"the realm is not the issuer tokens carry": {"http://keycloak.example/realms/shop", in.URL, `describes issuer "` + iss.URL + `"`},
		"the document names another issuer": {iss.URL, realmOf(t, map[string]any{
			"issuer": evil, "token_endpoint": evil + tokenPath, "jwks_uri": evil + "/protocol/openid-connect/certs",
		}), `describes issuer "` + evil + `"`},
		"the document names no token endpoint": {iss.URL, realmOf(t, map[string]any{"issuer": iss.URL}), "names none"},
		"no issuer is configured":              {"", in.URL, "no issuer"},
	}
	for name, tc := range refused {
		if got, err := svcauth.DiscoverTokenURL(ctx, nil, tc.issuer, tc.discovery); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q %v, want an error saying %s", name, got, err, tc.want)
		}
	}
}

// TestTokensFromADiscoveredEndpoint: with no token URL configured, the first token request
// finds the endpoint by discovery through the internal URL, and the token is fetched there
// too. A discovery that fails (Keycloak not up yet) is tried again on the next request;
// once it has succeeded, it is not made again.
func TestTokensFromADiscoveredEndpoint(t *testing.T) {
	iss := testkit.NewIssuer(t)
	in := newInternal(t, iss)
	iss.Handle(t, "POST /realms/shop/protocol/openid-connect/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": iss.Token(t, iss.Service("order-service", "payment-service", "SERVICE")),
			"token_type": "Bearer", "expires_in": 300})
	})
	ts := svcauth.TokenSource(t.Context(), svcauth.Config{
		Issuer: iss.URL, DiscoveryURL: in.URL, ClientID: "order-service", ClientSecret: "s3cret",
	})
	const discovery = "/realms/shop/.well-known/openid-configuration"
	const token = "/realms/shop/protocol/openid-connect/token"

	iss.SetDown(true)
	if _, err := ts.Token(); err == nil {
		t.Fatal("a token without discovery")
	}
	iss.SetDown(false)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := ts.Token(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d, tok := in.count(discovery), in.count(token); d != 2 || tok != 1 {
		t.Fatalf("through the internal URL: %d discoveries, %d token requests; want 2 (one failed) and 1", d, tok)
	}
}

// TestNewClientCallsOnlyThePeer: a client of the payment service refuses a server with a
// valid certificate of the CA, for the right host, of another service (here another
// order-service certificate), in the handshake: the service's token never reaches it. The
// payment service itself gets the call, with the token and the caller's certificate.
func TestNewClientCallsOnlyThePeer(t *testing.T) {
	p := testkit.NewPKI(t)
	type call struct{ peer, auth string }
	calls := make(chan call, 10)
	serve := func(id *mtls.Identity) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls <- call{peer: r.TLS.VerifiedChains[0][0].URIs[0].String(), auth: r.Header.Get("Authorization")}
		})}
		go func() { _ = srv.Serve(tls.NewListener(ln, id.ServerConfig())) }()
		t.Cleanup(func() { _ = srv.Close() })
		return "https://" + ln.Addr().String() + "/internal/payments"
	}
	impostor := serve(p.Load(p.Issue(nil, "order-service", "order-listener", time.Now().Add(-time.Minute), time.Hour)))
	payment := serve(p.Identity("payment-service"))
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "order-service-token"})
	client := svcauth.NewClient(p.Identity("order-service"), mtls.ID("payment-service"), ts, 0)

	if resp, err := client.Get(impostor); err == nil {
		resp.Body.Close()
		t.Fatalf("the client called another service than the payment service: %d", resp.StatusCode)
	}
	resp, err := client.Get(payment)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(calls)
	var got []call
	for c := range calls {
		got = append(got, c)
	}
	if len(got) != 1 || got[0] != (call{peer: "spiffe://shop/order-service", auth: "Bearer order-service-token"}) {
		t.Fatalf("calls received: %+v, want one, at the payment service", got)
	}
}
