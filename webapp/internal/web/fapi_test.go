package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/oidctest"
)

// TestCallbackFromAnotherIssuer is the mix-up attack of RFC 9207: an authorization
// response that names another issuer, or none although the realm always names itself, is
// refused before its code is spent, and nobody is logged in.
func TestCallbackFromAnotherIssuer(t *testing.T) {
	for name, iss := range map[string]string{"another issuer": "https://evil.example/realms/shop", "no issuer": ""} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			cb, err := url.Parse(startLogin(t, b, oidctest.Alice))
			if err != nil {
				t.Fatal(err)
			}
			q := cb.Query()
			if iss == "" {
				q.Del("iss")
			} else {
				q.Set("iss", iss)
			}
			cb.RawQuery = q.Encode()
			r := b.follow(cb.String())
			mustStatus(t, r, http.StatusBadRequest)
			mustContain(t, r, "could not be verified")
			if loggedIn(t, b) {
				t.Fatal("logged in from another issuer's answer")
			}
			if n := len(e.kc.Secrets()); n != 0 {
				t.Fatalf("the code was redeemed (%d tokens minted)", n)
			}
		})
	}
}

// TestJWKSIsPublic: the realm reads the webapp's client keys from here; only public halves.
func TestJWKSIsPublic(t *testing.T) {
	e := newEnv(t)
	resp, err := e.app.Test(httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &set) != nil || len(set.Keys) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	k := set.Keys[0]
	if k["kty"] != "EC" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] == "" {
		t.Fatalf("key %v", k)
	}
	if _, private := k["d"]; private || strings.Contains(string(raw), `"d"`) {
		t.Fatalf("the JWKS shows a private key: %s", raw)
	}
}
