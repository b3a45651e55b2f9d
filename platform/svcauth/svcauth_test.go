package svcauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
