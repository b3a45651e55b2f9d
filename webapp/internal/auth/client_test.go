package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/oidctest"
	"example.com/shop/webapp/internal/session"
)

const webappURL = "http://shop.test"

// newClient is the webapp's client of kc; hc, when given, makes its back-channel calls.
func newClient(t *testing.T, kc *oidctest.Provider, discovery string, hc ...*http.Client) *auth.Client {
	t.Helper()
	v, err := authn.NewVerifier(authn.Config{Issuer: kc.URL, DiscoveryURL: discovery, Audience: testkit.Audience})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.GenerateClientKeys()
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.Config{Issuer: kc.URL, DiscoveryURL: discovery, ClientID: "webapp", Keys: keys,
		PublicURL: webappURL, AccessTokens: v}
	if len(hc) > 0 {
		cfg.HTTPClient = hc[0]
	}
	c, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The realm trusts what the webapp's JWKS lists, as with `use.jwks.url`.
	kc.ClientKeys = c.JWKS
	return c
}

func newProvider(t *testing.T) *oidctest.Provider {
	return oidctest.New(t, "webapp", webappURL+auth.CallbackPath)
}

// newLogin starts a login as the login handler does.
func newLogin(t *testing.T, stepUp bool) session.PendingLogin {
	t.Helper()
	l, err := auth.NewLogin("/", stepUp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// login runs a whole login with the client and returns its result.
func login(t *testing.T, c *auth.Client, kc *oidctest.Provider, u oidctest.User) (*session.User, *session.Tokens) {
	t.Helper()
	l := newLogin(t, false)
	to, err := c.AuthCodeURL(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(kc.Authorize(to, u))
	if err := c.CheckIssuer(context.Background(), back.Query().Get("iss")); err != nil {
		t.Fatal(err)
	}
	user, tokens, err := c.Exchange(context.Background(), back.Query().Get("code"), l)
	if err != nil {
		t.Fatal(err)
	}
	return user, tokens
}

func TestLoginReadsTheTokens(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	u, tok := login(t, c, kc, oidctest.Ada)
	if u.Subject != oidctest.Ada.Subject || u.Username != "ada" || u.Name != "Ada Admin" || u.Email != "ada@example.com" ||
		!u.HasRole("ADMIN") || u.SessionID != kc.SessionOf(oidctest.Ada) || u.HasScope(auth.ScopeAdminRead) {
		t.Fatalf("user %+v", u)
	}
	if tok.Access == "" || tok.Refresh == "" || tok.ID == "" || time.Until(tok.Expiry) < 4*time.Minute {
		t.Fatalf("tokens %+v", tok)
	}
}

// TestInternalDiscovery: with a discovery URL, the server's own calls (discovery, token,
// keys) go there, while the URLs given to the browser stay on the public issuer.
func TestInternalDiscovery(t *testing.T) {
	kc := newProvider(t)
	internal := strings.Replace(kc.URL, "127.0.0.1", "localhost", 1) // the same server by another name
	c := newClient(t, kc, internal)
	l := newLogin(t, false)
	to, err := c.AuthCodeURL(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(to, kc.URL+"/protocol/openid-connect/auth?") {
		t.Fatalf("the browser is sent to %q", to)
	}
	u, tok := login(t, c, kc, oidctest.Alice) // the exchange reaches the token endpoint
	out, err := c.EndSession(context.Background(), tok.ID)
	if err != nil || out == nil || out.Action != kc.URL+"/protocol/openid-connect/logout" {
		t.Fatalf("logout form %+v %v", out, err)
	}
	if u.Subject != oidctest.Alice.Subject {
		t.Fatal(u)
	}
}

func TestDiscoveryFailureIsUnavailable(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "http://127.0.0.1:1/realms/shop")
	_, err := c.AuthCodeURL(context.Background(), newLogin(t, false))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
}

// TestInternalDiscoveryMustNameTheIssuer: a discovery document of another issuer, reached
// through the internal URL, is refused: the browser is never sent to its login page.
func TestInternalDiscoveryMustNameTheIssuer(t *testing.T) {
	kc := newProvider(t)
	other := newProvider(t) // another realm, answering at the internal URL
	c := newClient(t, kc, other.URL)
	to, err := c.AuthCodeURL(context.Background(), newLogin(t, false))
	if !errors.Is(err, auth.ErrUnavailable) || to != "" {
		t.Fatalf("AuthCodeURL = %q, %v; want ErrUnavailable", to, err)
	}
}

// TestRefreshIsShared: concurrent refreshes with one refresh token make one call, which
// Keycloak's reuse detection requires.
func TestRefreshIsShared(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	u, tok := login(t, c, kc, oidctest.Alice)
	kc.SetTokenDelay(300 * time.Millisecond) // all requests arrive while the first refresh is in flight
	var wg sync.WaitGroup
	results := make([]*session.Tokens, 8)
	for i := range results {
		wg.Go(func() {
			_, nt, err := c.Refresh(context.Background(), u, tok)
			if err != nil {
				t.Error(err)
			}
			results[i] = nt
		})
	}
	wg.Wait()
	if kc.Refreshes() != 1 {
		t.Fatalf("%d refresh calls for one token", kc.Refreshes())
	}
	for _, r := range results {
		if r == nil || r.Refresh == tok.Refresh {
			t.Fatal("no rotated refresh token")
		}
	}
	// The used token is refused, and so is the family afterwards (reuse detection).
	if _, _, err := c.Refresh(context.Background(), u, tok); !errors.Is(err, auth.ErrRejected) {
		t.Fatalf("reused refresh token: %v", err)
	}
}

func TestLogoutToken(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, kid := kc.Key()
	now := time.Now()
	ok := kc.LogoutToken("sid-1", "sub-1", nil)
	lo, err := c.VerifyLogoutToken(context.Background(), ok)
	if err != nil || lo.SessionID != "sid-1" || lo.Subject != "sub-1" || lo.ID == "" {
		t.Fatalf("valid token: %+v %v", lo, err)
	}
	if lo, err := c.VerifyLogoutToken(context.Background(), kc.LogoutToken("", "sub-1", testkit.Claims{"sid": nil})); err != nil || lo.SessionID != "" {
		t.Fatalf("subject-only token: %+v %v", lo, err)
	}
	bad := map[string]string{
		"foreign key":         testkit.Sign(t, testkit.Claims{"iss": kc.URL, "aud": "webapp", "iat": now.Unix(), "sid": "s", "events": map[string]any{auth.BackchannelLogoutEvent: map[string]any{}}}, jose.RS256, other, map[jose.HeaderKey]any{"kid": kid}),
		"expired":             kc.LogoutToken("s", "u", testkit.Claims{"exp": now.Add(-time.Minute).Unix()}),
		"too old":             kc.LogoutToken("s", "u", testkit.Claims{"iat": now.Add(-time.Hour).Unix(), "exp": nil}),
		"from the future":     kc.LogoutToken("s", "u", testkit.Claims{"iat": now.Add(time.Hour).Unix()}),
		"event not an object": kc.LogoutToken("s", "u", testkit.Claims{"events": map[string]any{auth.BackchannelLogoutEvent: "yes"}}),
		"nonce":               kc.LogoutToken("s", "u", testkit.Claims{"nonce": "x"}),
		"audience":            kc.LogoutToken("s", "u", testkit.Claims{"aud": "shop-api"}),
		"HS256":               testkit.Sign(t, testkit.Claims{"iss": kc.URL, "aud": "webapp", "iat": now.Unix(), "sid": "s", "events": map[string]any{auth.BackchannelLogoutEvent: map[string]any{}}}, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), map[jose.HeaderKey]any{"kid": kid}),
	}
	for name, tok := range bad {
		if _, err := c.VerifyLogoutToken(context.Background(), tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestForgedTokensDoNotFloodKeycloak: logout tokens come from anyone; a thousand with
// unknown key ids cost at most a couple of key fetches.
func TestForgedTokensDoNotFloodKeycloak(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	if _, err := c.VerifyLogoutToken(context.Background(), kc.LogoutToken("s", "u", nil)); err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	before := kc.JWKSHits()
	for i := range 1000 {
		tok := testkit.Sign(t, testkit.Claims{"iss": kc.URL, "aud": "webapp"}, jose.RS256, other, map[jose.HeaderKey]any{"kid": "forged-" + string(rune('a'+i%26)) + time.Now().String()})
		if _, err := c.VerifyLogoutToken(context.Background(), tok); err == nil {
			t.Fatal("forged token accepted")
		}
	}
	if hits := kc.JWKSHits() - before; hits > 1 {
		t.Fatalf("1,000 forged tokens caused %d key fetches", hits)
	}
}
