package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"example.com/shop/platform/testkit"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

type forged struct {
	name  string
	token string
	want  string // what error_description must mention
}

// forgedTokens is platform/authn's table of refused tokens, rebuilt here so that every
// case is proven through the whole gateway, token cache included. Each is a token an
// attacker or a confused client could present.
func forgedTokens(t *testing.T, iss *testkit.Issuer, jku string) []forged {
	priv, kid := iss.Key()
	good := iss.User("alice-sub", "alice", "USER")
	admin := good.With(testkit.Claims{"realm_access": map[string]any{"roles": []string{"USER", "ADMIN"}}})
	now := time.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	valid := iss.Token(t, good)
	parts := strings.Split(valid, ".")
	unsigned := func(alg string) string {
		return b64(map[string]any{"alg": alg, "typ": "JWT", "kid": kid}) + "." + b64(admin) + "."
	}
	return []forged{
		{"alg none", unsigned("none"), "invalid"},
		{"alg None", unsigned("None"), "invalid"},
		{"alg NONE", unsigned("NONE"), "invalid"},
		{"alg nOnE", unsigned("nOnE"), "invalid"},
		{"HS256 signed with the realm public key (DER)", testkit.Sign(t, admin, jose.HS256, pubDER, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"HS256 signed with the realm public key (modulus)", testkit.Sign(t, admin, jose.HS256, priv.PublicKey.N.Bytes(), map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"RS512, not in the allowlist", testkit.Sign(t, good, jose.RS512, priv, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"tampered payload (ADMIN added)", parts[0] + "." + b64(admin) + "." + parts[2], "invalid"},
		{"tampered subject", parts[0] + "." + b64(good.With(testkit.Claims{"sub": "bob-sub"})) + "." + parts[2], "invalid"},
		{"truncated signature", valid[:len(valid)-10], "invalid"},
		{"empty signature", parts[0] + "." + parts[1] + ".", "invalid"},
		{"two segments", parts[0] + "." + parts[1], "invalid"},
		{"four segments", valid + ".x", "invalid"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], "invalid"},
		{"five segments (JWE shape)", "a.b.c.d.e", "invalid"},
		{"garbage", "!!!.###.$$$", "invalid"},
		{"expired", iss.Token(t, good.With(testkit.Claims{"exp": now.Add(-2 * time.Minute).Unix()})), "expired"},
		{"missing exp", iss.Token(t, good.With(testkit.Claims{"exp": nil})), "expired"},
		{"nbf in the future", iss.Token(t, good.With(testkit.Claims{"nbf": now.Add(5 * time.Minute).Unix()})), "not valid yet"},
		{"wrong issuer", iss.Token(t, good.With(testkit.Claims{"iss": "http://evil.example/realms/shop"})), "another issuer"},
		{"issuer with trailing slash", iss.Token(t, good.With(testkit.Claims{"iss": iss.URL + "/"})), "another issuer"},
		{"issuer in other case", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "/shop", "/Shop", 1)})), "another issuer"},
		{"issuer over https", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "http://", "https://", 1)})), "another issuer"},
		{"issuer of another realm", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "/realms/shop", "/realms/master", 1)})), "another issuer"},
		{"missing issuer", iss.Token(t, good.With(testkit.Claims{"iss": nil})), "another issuer"},
		{"missing audience", iss.Token(t, good.With(testkit.Claims{"aud": nil})), "not meant"},
		{"audience account only", iss.Token(t, good.With(testkit.Claims{"aud": "account"})), "not meant"},
		{"look-alike audience", iss.Token(t, good.With(testkit.Claims{"aud": []string{"shop-api-evil"}})), "not meant"},
		{"payment-service audience", iss.Token(t, good.With(testkit.Claims{"aud": "payment-service"})), "not meant"},
		{"unknown kid", testkit.Sign(t, admin, jose.RS256, other, map[jose.HeaderKey]any{"kid": "not-a-realm-key"}), "unknown key"},
		{"no kid", testkit.Sign(t, good, jose.RS256, priv, nil), "invalid"},
		{"realm kid, foreign key", testkit.Sign(t, admin, jose.RS256, other, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"embedded jwk header", testkit.Sign(t, admin, jose.RS256, other, map[jose.HeaderKey]any{"kid": kid,
			"jwk": jose.JSONWebKey{Key: &other.PublicKey, KeyID: kid, Algorithm: "RS256"}}), "invalid"},
		{"jku header", testkit.Sign(t, admin, jose.RS256, other, map[jose.HeaderKey]any{"kid": "attacker", "jku": jku}), "unknown key"},
		{"x5u header", testkit.Sign(t, admin, jose.RS256, other, map[jose.HeaderKey]any{"kid": "attacker", "x5u": jku}), "unknown key"},
		{"ID token", iss.Token(t, good.With(testkit.Claims{"typ": "ID", "aud": []string{"webapp", testkit.Audience}})), "not an access token"},
		{"refresh token", iss.Token(t, good.With(testkit.Claims{"typ": "Refresh"})), "not an access token"},
		{"logout token", iss.Token(t, good.With(testkit.Claims{"typ": "Logout"})), "not an access token"},
		{"no typ", iss.Token(t, good.With(testkit.Claims{"typ": nil})), "not an access token"},
		{"no subject", iss.Token(t, good.With(testkit.Claims{"sub": nil})), "invalid"},
		// The realm's own signature, in the JWS JSON serialization: only compact is a token.
		{"JSON serialization, flattened", testkit.JWSJSON(t, iss.Token(t, good), false, nil), "compact"},
		{"JSON serialization, general", testkit.JWSJSON(t, iss.Token(t, good), true, nil), "compact"},
		{"JSON serialization, kid and jku unprotected", testkit.JWSJSON(t, testkit.Sign(t, good, jose.RS256, priv, nil), false,
			map[string]any{"kid": kid, "jku": jku}), "compact"},
	}
}

// TestBadTokensAreRefused sends every forged token to a protected and an admin route,
// twice (a refused token must not become a cached one), with the token cache on and off.
// Each answer is 401 with an RFC 6750 challenge, the body names neither the token nor its
// subject, and no upstream sees anything.
func TestBadTokensAreRefused(t *testing.T) {
	var jkuHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { jkuHits.Add(1) }))
	defer attacker.Close()
	for _, cache := range []string{"true", "false"} {
		t.Run("cache="+cache, func(t *testing.T) {
			h := gateway(t, map[string]string{"GATEWAY_TOKEN_CACHE": cache, "GATEWAY_BURST": "1000"})
			// Warm up: the realm's keys are known and the good token cached before the
			// forgeries arrive.
			for range 2 {
				if resp, body := h.do(h.request("GET", "/api/orders", h.shopper)); resp.StatusCode != 200 {
					t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
				}
			}
			warm := h.upstreamHits()
			for _, tc := range forgedTokens(t, h.iss, attacker.URL) {
				for _, path := range []string{"/api/orders", "/api/admin/products", "/api/orders/admin/all"} {
					for range 2 {
						resp, body := h.do(h.request("GET", path, tc.token))
						isProblem(t, resp, body, http.StatusUnauthorized)
						challenge := resp.Header.Get("WWW-Authenticate")
						if !strings.HasPrefix(challenge, `Bearer realm="shop", error="invalid_token"`) || !strings.Contains(challenge, tc.want) {
							t.Fatalf("%s on %s: WWW-Authenticate %q, want invalid_token mentioning %q", tc.name, path, challenge, tc.want)
						}
						if strings.Contains(body, "alice-sub") || strings.Contains(body, tc.token) {
							t.Fatalf("%s: the refusal leaks the token or its subject: %s", tc.name, body)
						}
					}
				}
			}
			if h.gw.Tokens != nil && h.gw.Tokens.Len() != 1 {
				t.Errorf("the token cache holds %d entries; only the warm-up token was valid", h.gw.Tokens.Len())
			}
			if n := h.upstreamHits() - warm; n != 0 {
				t.Fatalf("forged tokens reached the upstreams %d times", n)
			}
			if strings.Contains(h.logs.String(), h.shopper) {
				t.Fatal("a token reached the logs")
			}
		})
	}
	if jkuHits.Load() != 0 {
		t.Fatalf("the gateway fetched keys from a token-supplied URL %d times", jkuHits.Load())
	}
}

// TestTokenOnlyFromAuthorizationHeader: a token in a cookie or under another scheme is
// no token at all; the challenge is the bare one of RFC 6750 section 3.1. (A token in the
// query or a form body is refused with 400: TestAmbiguousCredentialsAreRefused.)
func TestTokenOnlyFromAuthorizationHeader(t *testing.T) {
	h := gateway(t, nil)
	cookie := h.request("GET", "/api/orders", "")
	cookie.AddCookie(&http.Cookie{Name: "access_token", Value: h.shopper})
	basic := h.request("GET", "/api/orders", "")
	basic.Header.Set("Authorization", "Basic "+h.shopper)
	empty := h.request("GET", "/api/orders", "")
	empty.Header.Set("Authorization", "Bearer ")
	for name, req := range map[string]*http.Request{"cookie": cookie, "basic scheme": basic, "empty bearer": empty} {
		resp, body := h.do(req)
		isProblem(t, resp, body, http.StatusUnauthorized)
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="shop", DPoP algs="ES256 ES384 PS256 PS384 EdDSA"` {
			t.Errorf("%s: WWW-Authenticate %q", name, got)
		}
	}
	if h.upstreamHits() != 0 {
		t.Fatal("a request without a header token reached an upstream")
	}
}

// TestAmbiguousCredentialsAreRefused is RFC 6750 section 2 from the attacker's side: two
// Authorization headers, or a token in the query string or a form body (beside the header
// or alone), get 400 invalid_request on protected, admin and public routes alike, with the
// token cache on and off and the shopper's token already cached. No upstream sees any of
// them, so no access_token ever travels upstream in a URL.
func TestAmbiguousCredentialsAreRefused(t *testing.T) {
	for _, cache := range []string{"true", "false"} {
		t.Run("cache="+cache, func(t *testing.T) {
			h := gateway(t, map[string]string{"GATEWAY_TOKEN_CACHE": cache, "GATEWAY_BURST": "1000"})
			for range 2 {
				if resp, body := h.do(h.request("GET", "/api/orders", h.shopper)); resp.StatusCode != 200 {
					t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
				}
			}
			warm := h.upstreamHits()
			type attempt struct {
				name          string
				query         string
				authorization []string
				form          string
			}
			attempts := []attempt{
				{name: "shopper then admin", authorization: []string{"Bearer " + h.shopper, "Bearer " + h.admin}},
				{name: "admin then shopper", authorization: []string{"Bearer " + h.admin, "Bearer " + h.shopper}},
				{name: "Bearer then Basic", authorization: []string{"Bearer " + h.shopper, "Basic YWxpY2U6c2VjcmV0"}},
				{name: "Bearer then garbage", authorization: []string{"Bearer " + h.shopper, "garbage"}},
				{name: "header and query", query: "?access_token=" + url.QueryEscape(h.admin), authorization: []string{"Bearer " + h.shopper}},
				{name: "query alone", query: "?page=1&access_token=" + url.QueryEscape(h.shopper)},
				{name: "header and form body", form: "access_token=" + url.QueryEscape(h.admin), authorization: []string{"Bearer " + h.shopper}},
				{name: "form body alone", form: "access_token=" + url.QueryEscape(h.shopper)},
			}
			for _, a := range attempts {
				for _, path := range []string{"/api/orders", "/api/admin/products", "/api/public/products"} {
					req := h.request("GET", path+a.query, "")
					if a.form != "" {
						req = h.request("POST", path+a.query, "", a.form)
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					req.Header["Authorization"] = a.authorization
					resp, body := h.do(req)
					p := isProblem(t, resp, body, http.StatusBadRequest)
					challenge := resp.Header.Get("WWW-Authenticate")
					if !strings.HasPrefix(challenge, `Bearer realm="shop", error="invalid_request"`) || p.Detail == "" {
						t.Fatalf("%s on %s: WWW-Authenticate %q, detail %q; want invalid_request", a.name, path, challenge, p.Detail)
					}
					if strings.Contains(body, h.shopper) || strings.Contains(body, h.admin) {
						t.Fatalf("%s: the refusal repeats a token: %s", a.name, body)
					}
				}
			}
			if n := h.upstreamHits() - warm; n != 0 {
				t.Fatalf("ambiguous requests reached the upstreams %d times", n)
			}
			for _, u := range []*upstream{h.order, h.payment} {
				u.mu.Lock()
				for _, p := range u.paths {
					if strings.Contains(p, "access_token") {
						t.Errorf("%s upstream saw a token in the URL: %s", u.name, p)
					}
				}
				u.mu.Unlock()
			}
			// The control: the same routes, one header and no parameter, pass.
			for _, path := range []string{"/api/orders?page=1", "/api/public/products?access_tokens=1"} {
				if resp, body := h.do(h.request("GET", path, h.shopper)); resp.StatusCode != 200 {
					t.Fatalf("%s with one bearer header: %d %s", path, resp.StatusCode, body)
				}
			}
		})
	}
}

// TestTokenCacheFollowsKeyRotation: the cache serves a token it verified; after the realm
// rotates its keys and retires the old one, the gateway refuses tokens signed with it,
// though it had cached them.
func TestTokenCacheFollowsKeyRotation(t *testing.T) {
	h := gateway(t, nil, fastKeyRefresh)
	old := h.shopper
	for range 2 {
		if resp, body := h.do(h.request("GET", "/api/orders", old)); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if h.gw.Tokens.Len() != 1 {
		t.Fatalf("cache holds %d tokens", h.gw.Tokens.Len())
	}
	h.iss.RotateKey(t)
	h.iss.RetireOldKeys()
	// The verifier learns about the new key set when it first meets the new kid.
	time.Sleep(5 * time.Millisecond) // past fastKeyRefresh's MinKeyRefresh
	fresh := h.iss.Token(t, h.iss.User("bob-sub", "bob", "USER"))
	if resp, body := h.do(h.request("GET", "/api/orders", fresh)); resp.StatusCode != 200 {
		t.Fatalf("a token under the new key: %d %s", resp.StatusCode, body)
	}
	before := h.upstreamHits()
	resp, body := h.do(h.request("GET", "/api/orders", old))
	isProblem(t, resp, body, http.StatusUnauthorized)
	if h.upstreamHits() != before {
		t.Fatal("a token of a retired key reached the upstream")
	}
}
