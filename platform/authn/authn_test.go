package authn_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/testkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newApp serves GET /me behind the middleware and echoes the principal.
func newApp(t *testing.T, iss *testkit.Issuer, tweak ...func(*authn.Config)) (*fiber.App, *authn.Verifier) {
	t.Helper()
	cfg := authn.Config{Issuer: iss.URL, Audience: testkit.Audience, MinKeyRefresh: time.Minute}
	for _, f := range tweak {
		f(&cfg)
	}
	v, err := authn.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(quiet, nil)})
	mw := v.Middleware(quiet)
	app.All("/me", mw, func(c *fiber.Ctx) error {
		p, _ := authn.PrincipalFrom(c)
		return c.JSON(p)
	})
	return app, v
}

func call(t *testing.T, app *fiber.App, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func bearer(token string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestValidTokenYieldsPrincipal(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, _ := newApp(t, iss)
	claims := iss.User("u-1", "alice", "USER", "ADMIN").With(testkit.Claims{"scope": "openid admin:read"})
	resp, body := call(t, app, bearer(iss.Token(t, claims)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var p authn.Principal
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Subject != "u-1" || p.Username != "alice" || p.ClientID != "webapp" ||
		!p.HasRole("ADMIN") || !p.HasRole("USER") || !p.HasScope("admin:read") || p.HasScope("admin") {
		t.Fatalf("principal %+v", p)
	}
}

// TestBoundTokenNamesItsKey: a DPoP-bound token (Keycloak's typ DPoP with cnf.jkt) is an
// access token whose principal names the key; proofs are the gateway's to check.
func TestBoundTokenNamesItsKey(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, _ := newApp(t, iss)
	claims := iss.User("u-1", "alice", "USER").With(testkit.Claims{"typ": "DPoP", "cnf": map[string]any{"jkt": "thumbprint-1"}})
	resp, body := call(t, app, bearer(iss.Token(t, claims)))
	var p authn.Principal
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil || p.KeyBound != "thumbprint-1" {
		t.Fatalf("status %d, principal %s", resp.StatusCode, body)
	}
}

// TestRefusedTokens is the attacker's side: each token must be answered 401 with an RFC
// 6750 challenge, and the handler must never run.
func TestRefusedTokens(t *testing.T) {
	iss := testkit.NewIssuer(t)
	priv, kid := iss.Key()
	good := iss.User("u-1", "alice", "USER")
	now := time.Now()
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)

	// A server that would hand out the attacker's keys: it must never be asked.
	var jkuHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jkuHits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &other.PublicKey, KeyID: kid, Algorithm: "RS256"}}})
	}))
	defer attacker.Close()

	valid := iss.Token(t, good)
	parts := strings.Split(valid, ".")

	noneToken := func(alg string) string {
		return b64(map[string]any{"alg": alg, "typ": "JWT", "kid": kid}) + "." + b64(good.With(testkit.Claims{"realm_access": map[string]any{"roles": []string{"USER", "ADMIN"}}})) + "."
	}

	cases := []struct {
		name  string
		token string
		want  string // expected error_description
	}{
		{"alg none", noneToken("none"), "invalid"},
		{"alg None", noneToken("None"), "invalid"},
		{"alg NONE", noneToken("NONE"), "invalid"},
		{"alg nOnE", noneToken("nOnE"), "invalid"},
		{"HS256 signed with the realm public key (DER)", testkit.Sign(t, good, jose.HS256, pubDER, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"HS256 signed with the realm public key (modulus)", testkit.Sign(t, good, jose.HS256, priv.PublicKey.N.Bytes(), map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"RS512 (not in the allowlist)", testkit.Sign(t, good, jose.RS512, priv, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"tampered payload", parts[0] + "." + b64(good.With(testkit.Claims{"realm_access": map[string]any{"roles": []string{"USER", "ADMIN"}}})) + "." + parts[2], "invalid"},
		{"tampered subject", parts[0] + "." + b64(good.With(testkit.Claims{"sub": "u-2"})) + "." + parts[2], "invalid"},
		{"truncated signature", valid[:len(valid)-10], "invalid"},
		{"empty signature", parts[0] + "." + parts[1] + ".", "invalid"},
		{"expired beyond the leeway", iss.Token(t, good.With(testkit.Claims{"exp": now.Add(-2 * time.Minute).Unix()})), "expired"},
		{"missing exp", iss.Token(t, good.With(testkit.Claims{"exp": nil})), "expired"},
		{"nbf in the future", iss.Token(t, good.With(testkit.Claims{"nbf": now.Add(5 * time.Minute).Unix()})), "not valid yet"},
		{"wrong issuer", iss.Token(t, good.With(testkit.Claims{"iss": "http://evil.example/realms/shop"})), "another issuer"},
		{"issuer with trailing slash", iss.Token(t, good.With(testkit.Claims{"iss": iss.URL + "/"})), "another issuer"},
		{"issuer of another realm", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "/realms/shop", "/realms/master", 1)})), "another issuer"},
		{"issuer in other case", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "/shop", "/Shop", 1)})), "another issuer"},
		{"issuer over https", iss.Token(t, good.With(testkit.Claims{"iss": strings.Replace(iss.URL, "http://", "https://", 1)})), "another issuer"},
		{"missing issuer", iss.Token(t, good.With(testkit.Claims{"iss": nil})), "another issuer"},
		{"missing audience", iss.Token(t, good.With(testkit.Claims{"aud": nil})), "not meant"},
		{"Keycloak's default audience account", iss.Token(t, good.With(testkit.Claims{"aud": "account"})), "not meant"},
		{"look-alike audience", iss.Token(t, good.With(testkit.Claims{"aud": []string{"shop-api-evil", "shop"}})), "not meant"},
		{"payment-service audience", iss.Token(t, good.With(testkit.Claims{"aud": "payment-service"})), "not meant"},
		{"unknown kid", testkit.Sign(t, good, jose.RS256, other, map[jose.HeaderKey]any{"kid": "not-a-realm-key"}), "unknown key"},
		{"no kid", testkit.Sign(t, good, jose.RS256, priv, nil), "invalid"},
		{"realm kid, foreign key", testkit.Sign(t, good, jose.RS256, other, map[jose.HeaderKey]any{"kid": kid}), "invalid"},
		{"embedded jwk header", testkit.Sign(t, good, jose.RS256, other, map[jose.HeaderKey]any{"kid": kid,
			"jwk": jose.JSONWebKey{Key: &other.PublicKey, KeyID: kid, Algorithm: "RS256"}}), "invalid"},
		{"jku header", testkit.Sign(t, good, jose.RS256, other, map[jose.HeaderKey]any{"kid": "attacker", "jku": attacker.URL}), "unknown key"},
		{"x5u header", testkit.Sign(t, good, jose.RS256, other, map[jose.HeaderKey]any{"kid": "attacker", "x5u": attacker.URL}), "unknown key"},
		{"two segments", parts[0] + "." + parts[1], "invalid"},
		{"four segments", valid + ".x", "invalid"},
		{"five segments (JWE shape)", "a.b.c.d.e", "invalid"},
		{"garbage segments", "!!!.###.$$$", "invalid"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], "invalid"},
		{"ID token as access token", iss.Token(t, good.With(testkit.Claims{"typ": "ID", "aud": []string{"webapp", testkit.Audience}})), "not an access token"},
		{"refresh token as access token", iss.Token(t, good.With(testkit.Claims{"typ": "Refresh"})), "not an access token"},
		{"logout token as access token", iss.Token(t, good.With(testkit.Claims{"typ": "Logout"})), "not an access token"},
		{"no typ claim", iss.Token(t, good.With(testkit.Claims{"typ": nil})), "not an access token"},
		{"typ DPoP without cnf.jkt", iss.Token(t, good.With(testkit.Claims{"typ": "DPoP"})), "not an access token"},
		{"no subject", iss.Token(t, good.With(testkit.Claims{"sub": nil})), "invalid"},
	}
	app, _ := newApp(t, iss)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, app, bearer(tc.token))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, `Bearer realm="shop", error="invalid_token"`) || !strings.Contains(challenge, tc.want) {
				t.Fatalf("WWW-Authenticate %q, want invalid_token mentioning %q", challenge, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
				t.Fatalf("content type %q", ct)
			}
			if strings.Contains(body, "u-1") || strings.Contains(body, tc.token) {
				t.Fatalf("the refusal leaks the token or its subject: %s", body)
			}
		})
	}
	if jkuHits.Load() != 0 {
		t.Fatalf("the verifier fetched keys from a token-supplied URL %d times", jkuHits.Load())
	}
}

func TestLeewayAcceptsSmallSkew(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, _ := newApp(t, iss)
	now := time.Now()
	for name, c := range map[string]testkit.Claims{
		"expired 10s ago": {"exp": now.Add(-10 * time.Second).Unix()},
		"nbf in 10s":      {"nbf": now.Add(10 * time.Second).Unix()},
	} {
		resp, body := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER").With(c))))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %s", name, resp.StatusCode, body)
		}
	}
}

// TestTokenOnlyFromAuthorizationHeader: a token in a cookie or under another scheme is no
// token at all. (One in the query string or a form body is refused with 400: see
// TestAmbiguousCredentialsAreRefused.)
func TestTokenOnlyFromAuthorizationHeader(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, _ := newApp(t, iss)
	token := iss.Token(t, iss.User("u-1", "alice", "USER"))

	reqs := map[string]*http.Request{
		"no header": httptest.NewRequest(http.MethodGet, "/me", nil),
		"cookie": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/me", nil)
			r.AddCookie(&http.Cookie{Name: "access_token", Value: token})
			return r
		}(),
		"basic scheme": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/me", nil)
			r.Header.Set("Authorization", "Basic "+token)
			return r
		}(),
		"empty bearer": bearer(""),
	}
	for name, req := range reqs {
		resp, body := call(t, app, req)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401: %s", name, resp.StatusCode, body)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="shop"` {
			t.Errorf("%s: WWW-Authenticate %q, want a bare challenge (no token was presented)", name, got)
		}
	}
}

// TestUnknownKidRefetchIsBounded sends 1,000 tokens with distinct unknown key ids: the
// JWKS must be fetched a bounded number of times, not once per token.
func TestUnknownKidRefetchIsBounded(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, v := newApp(t, iss)
	// Warm up: the first valid token fetches the keys once.
	if resp, _ := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER")))); resp.StatusCode != 200 {
		t.Fatalf("warm-up status %d", resp.StatusCode)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	claims := iss.User("u-1", "alice", "USER")
	for i := range 1000 {
		tok := testkit.Sign(t, claims, jose.RS256, other, map[jose.HeaderKey]any{"kid": "forged-" + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")})
		if resp, _ := call(t, app, bearer(tok)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged token %d: status %d", i, resp.StatusCode)
		}
	}
	if hits := iss.JWKSHits(); hits > 2 {
		t.Fatalf("1,000 unknown kids caused %d JWKS fetches; want at most 2", hits)
	}
	if v.KeyFetches() > 2 {
		t.Fatalf("verifier counted %d fetches", v.KeyFetches())
	}
}

// TestKeyRotation: a token signed with a new key is accepted after one refetch, and the key
// generation moves so caches of verified tokens drop their entries.
func TestKeyRotation(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, v := newApp(t, iss, func(c *authn.Config) { c.MinKeyRefresh = time.Millisecond })
	if resp, _ := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER")))); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	gen := v.KeysGeneration()
	iss.RotateKey(t)
	iss.RetireOldKeys()
	time.Sleep(2 * time.Millisecond)
	if resp, body := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER")))); resp.StatusCode != 200 {
		t.Fatalf("token under the new key: status %d: %s", resp.StatusCode, body)
	}
	if v.KeysGeneration() == gen {
		t.Fatal("key generation did not change after rotation")
	}
}

// TestInternalDiscovery: discovery and keys come from an internal URL while tokens must
// still carry the public issuer.
func TestInternalDiscovery(t *testing.T) {
	iss := testkit.NewIssuer(t)
	// The fake realm announces iss.URL as its issuer (the public URL); the same server under
	// another host name plays the internal URL a container would use.
	internal := strings.Replace(iss.URL, "127.0.0.1", "localhost", 1)
	app, _ := newApp(t, iss, func(c *authn.Config) { c.DiscoveryURL = internal })
	if resp, body := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER")))); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	resp, _ := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER").With(testkit.Claims{"iss": internal}))))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token naming the internal URL as issuer got %d, want 401", resp.StatusCode)
	}
}

// TestDiscover: endpoints named under the public issuer are moved onto the internal URL
// discovery came from, so keys and tokens are fetched the way discovery was; fetched from
// the issuer itself, they stay as named.
func TestDiscover(t *testing.T) {
	iss := testkit.NewIssuer(t)
	internal := strings.Replace(iss.URL, "127.0.0.1", "localhost", 1)
	for from, base := range map[string]string{"": iss.URL, internal: internal, internal + "/": internal} {
		d, err := authn.Discover(t.Context(), nil, iss.URL, from)
		if err != nil {
			t.Fatalf("discovery at %q: %v", from, err)
		}
		want := authn.Discovery{Issuer: iss.URL, JWKSURL: base + "/protocol/openid-connect/certs", TokenURL: base + "/protocol/openid-connect/token"}
		if *d != want {
			t.Errorf("discovery at %q: %+v, want %+v", from, *d, want)
		}
	}
	iss.SetDown(true)
	if _, err := authn.Discover(t.Context(), nil, iss.URL, internal); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("discovery of a realm that is down: %v", err)
	}
}

// TestInternalDiscoveryMustNameTheIssuer: a discovery document fetched from the internal
// URL must name the configured (public) issuer. Here the internal URL leads to another
// realm, with keys of its own, that signs a token claiming the public issuer: its
// document is refused, its keys are never fetched, and neither the token nor readiness
// passes.
func TestInternalDiscoveryMustNameTheIssuer(t *testing.T) {
	iss := testkit.NewIssuer(t)
	other := testkit.NewIssuer(t)
	internal := func(c *authn.Config) { c.DiscoveryURL = other.URL }
	app, _ := newApp(t, iss, internal)
	forged := other.Token(t, other.User("u-1", "alice", "USER", "ADMIN").With(testkit.Claims{"iss": iss.URL}))
	if resp, body := call(t, app, bearer(forged)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token of the realm at the internal URL got %d, want 401: %s", resp.StatusCode, body)
	}
	// A verifier of its own: the one above waits a minute before it tries discovery again.
	_, v := newApp(t, iss, internal)
	if err := v.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), `describes issuer "`+other.URL+`"`) {
		t.Fatalf("ready with the other realm's discovery: %v", err)
	}
	if n := other.JWKSHits(); n != 0 {
		t.Fatalf("the other realm's keys were fetched %d times", n)
	}
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]authn.Config{
		"no issuer":   {Audience: "shop-api"},
		"no audience": {Issuer: "http://x/realms/shop"},
		"HS256":       {Issuer: "http://x/realms/shop", Audience: "shop-api", Algorithms: []string{"HS256"}},
		"none":        {Issuer: "http://x/realms/shop", Audience: "shop-api", Algorithms: []string{"none"}},
	} {
		if _, err := authn.NewVerifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestReadyNeedsKeys: readiness fails while the issuer is unreachable, also on the retries
// that the refetch limit turns into no-ops, and succeeds once keys are loaded.
func TestReadyNeedsKeys(t *testing.T) {
	v, err := authn.NewVerifier(authn.Config{Issuer: "http://127.0.0.1:1/realms/shop", Audience: "shop-api", MinKeyRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := v.Ready(t.Context()); err == nil {
			t.Fatalf("attempt %d: ready without keys", i)
		}
	}
	iss := testkit.NewIssuer(t)
	v, _ = authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: "shop-api"})
	if err := v.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestExtraAudiences: a service accepts its own audience beside shop-api, and nothing else.
func TestExtraAudiences(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, _ := newApp(t, iss, func(c *authn.Config) { c.ExtraAudiences = []string{"payment-service"} })
	for aud, want := range map[string]int{"shop-api": 200, "payment-service": 200, "order-service": 401, "account": 401} {
		resp, body := call(t, app, bearer(iss.Token(t, iss.Service("order-service", aud, "SERVICE"))))
		if resp.StatusCode != want {
			t.Errorf("aud %s: status %d, want %d: %s", aud, resp.StatusCode, want, body)
		}
	}
	resp, _ := call(t, app, bearer(iss.Token(t, iss.User("u-1", "alice", "USER").With(testkit.Claims{"aud": nil}))))
	if resp.StatusCode != 401 {
		t.Errorf("no audience: status %d", resp.StatusCode)
	}
}
