package svcauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// fakeExchange is a token endpoint that exchanges "user-<n>" tokens for "narrowed-<n>"
// when order-service asks for audience payment-service, as Keycloak's standard token
// exchange would, and refuses everything else the way Keycloak does.
func fakeExchange(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		f := r.PostForm
		w.Header().Set("Content-Type", "application/json")
		refuse := func(code, why string) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": why})
		}
		switch {
		case id != "order-service" || secret != "s3cret":
			refuse("invalid_client", "bad client credentials")
		case f.Get("grant_type") != grantTokenExchange || f.Get("subject_token_type") != tokenTypeAccess ||
			f.Get("requested_token_type") != tokenTypeAccess:
			refuse("invalid_request", "not a token exchange")
		case f.Get("audience") != "payment-service":
			refuse("invalid_request", "Requested audience not available")
		case len(f.Get("subject_token")) < 6 || f.Get("subject_token")[:5] != "user-":
			refuse("invalid_token", "Invalid token")
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{
				"access_token": "narrowed-" + f.Get("subject_token")[5:], "token_type": "Bearer", "expires_in": 300,
				"issued_token_type": tokenTypeAccess,
			})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestExchangeNarrowsAndCachesPerSubjectToken(t *testing.T) {
	srv, calls := fakeExchange(t)
	now := time.Now()
	x := NewExchanger(Config{TokenURL: srv.URL, ClientID: "order-service", ClientSecret: "s3cret"}, "payment-service")
	x.now = func() time.Time { return now }
	ctx := context.Background()

	for range 3 {
		if got, err := x.Exchange(ctx, "user-alice"); err != nil || got != "narrowed-alice" {
			t.Fatalf("alice: %q, %v", got, err)
		}
	}
	if got, err := x.Exchange(ctx, "user-bob"); err != nil || got != "narrowed-bob" {
		t.Fatalf("bob: %q, %v", got, err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d token requests for two users, want 2 (one each, then the cache)", n)
	}
	// Within EarlyRefresh of its expiry a cached token is exchanged afresh.
	now = now.Add(300*time.Second - x.cfg.EarlyRefresh + time.Second)
	if _, err := x.Exchange(ctx, "user-alice"); err != nil || calls.Load() != 3 {
		t.Fatalf("near expiry: %v, %d requests, want a third", err, calls.Load())
	}
}

func TestExchangeRefusalsAndOutages(t *testing.T) {
	srv, _ := fakeExchange(t)
	ctx := context.Background()
	refused := []struct {
		name             string
		client, audience string
		subject          string
	}{
		{"a token Keycloak will not exchange", "order-service", "payment-service", "service-token"},
		{"an audience the client may not ask for", "order-service", "shop-api", "user-alice"},
		{"another client's credentials", "webapp", "payment-service", "user-alice"},
	}
	for _, tc := range refused {
		x := NewExchanger(Config{TokenURL: srv.URL, ClientID: tc.client, ClientSecret: "s3cret"}, tc.audience)
		if got, err := x.Exchange(ctx, tc.subject); !errors.Is(err, ErrExchangeRefused) || got != "" {
			t.Errorf("%s: %q, %v; want ErrExchangeRefused", tc.name, got, err)
		}
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	x := NewExchanger(Config{TokenURL: down.URL, ClientID: "order-service", ClientSecret: "s3cret"}, "payment-service")
	if _, err := x.Exchange(ctx, "user-alice"); err == nil || errors.Is(err, ErrExchangeRefused) {
		t.Fatalf("Keycloak unreachable: %v, want an error that is not a refusal", err)
	}
}

// TestExchangeKeepsBoundTokens: a DPoP-bound token (cnf.jkt) is propagated as it is, with
// no call to Keycloak, which refuses to exchange it for any client but its own; an unbound
// token with other claims, or a cnf without jkt, is exchanged as usual.
func TestExchangeKeepsBoundTokens(t *testing.T) {
	srv, calls := fakeExchange(t)
	x := NewExchanger(Config{TokenURL: srv.URL, ClientID: "order-service", ClientSecret: "s3cret"}, "payment-service")
	jwt := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
	}
	bound := jwt(map[string]any{"sub": "alice", "cnf": map[string]any{"jkt": "thumbprint"}})
	if got, err := x.Exchange(context.Background(), bound); err != nil || got != bound {
		t.Fatalf("bound token: %q, %v; want it unchanged", got, err)
	}
	if calls.Load() != 0 {
		t.Fatal("a bound token was sent to the token endpoint")
	}
	for _, unbound := range []string{jwt(map[string]any{"sub": "alice"}), jwt(map[string]any{"cnf": map[string]any{"x5t#S256": "t"}})} {
		if _, err := x.Exchange(context.Background(), unbound); !errors.Is(err, ErrExchangeRefused) {
			t.Fatalf("an unbound token was not exchanged: %v", err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d token requests for two unbound tokens", calls.Load())
	}
}
