package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	jose "github.com/go-jose/go-jose/v4"

	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/app"
	"example.com/shop/webapp/internal/oidctest"
)

// TestCSRF: a state-changing form needs the token of its own session, in the form and in
// the cookie; and no GET changes state.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	victim := e.browser()
	victim.loginAs(oidctest.Alice)
	attacker := e.browser()
	attackerToken := attacker.csrf()

	cases := map[string]url.Values{
		"no token":                 {"productId": {mugID}},
		"empty token":              {"productId": {mugID}, "_csrf": {""}},
		"token of another session": {"productId": {mugID}, "_csrf": {attackerToken}},
		"made-up token":            {"productId": {mugID}, "_csrf": {"00000000-0000-4000-8000-000000000000"}},
	}
	for name, form := range cases {
		t.Run(name, func(t *testing.T) {
			r := victim.postRaw("/cart/items", form)
			mustStatus(t, r, http.StatusForbidden)
			mustContain(t, r, "This form has expired")
		})
	}
	// The attacker's own token and cookie, riding on the victim's session cookie.
	forged := e.browser()
	forged.cookies["shop_session"] = victim.sessionID()
	forged.cookies["shop_csrf"] = attackerToken
	mustStatus(t, forged.postRaw("/cart/items", url.Values{"productId": {mugID}, "_csrf": {attackerToken}}), http.StatusForbidden)
	for _, path := range []string{"/logout", "/checkout", "/orders/" + mugID + "/cancel"} {
		mustStatus(t, victim.postRaw(path, url.Values{}), http.StatusForbidden)
	}
	if r := victim.get("/cart"); !strings.Contains(r.body, "Your cart is empty") {
		t.Fatal("a refused form changed the cart")
	}
	if !loggedIn(t, victim) {
		t.Fatal("a logout without token logged the victim out")
	}

	// The pages' forms carry the session's token.
	r := victim.get("/")
	if m := csrfInput.FindStringSubmatch(r.body); m == nil || m[1] != victim.cookies["shop_csrf"] {
		t.Fatalf("the page's form token does not match the session's: %v", m)
	}
	mustStatus(t, victim.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)

	// No GET changes state.
	for _, path := range []string{"/cart/items?productId=" + mugID, "/logout", "/checkout?idempotencyKey=abc"} {
		victim.get(path)
	}
	if !loggedIn(t, victim) || strings.Count(victim.get("/cart").body, `data-product-id="`+mugID) != 1 {
		t.Fatal("a GET changed the session")
	}
	if r := victim.get("/cart"); !strings.Contains(r.body, `value="1"`) {
		t.Fatal("a GET changed the cart")
	}
}

// TestRefresh: an expiring access token is refreshed before the API call; the rotated
// refresh token is kept, so the next refresh works too.
func TestRefresh(t *testing.T) {
	e := newEnv(t)
	e.kc.SetAccessTTL(10 * time.Second) // within the refresh margin: every request refreshes
	b := e.browser()
	b.loginAs(oidctest.Alice)
	for i := 1; i <= 3; i++ {
		mustStatus(t, b.get("/orders"), http.StatusOK)
		if got := e.kc.Refreshes(); got != i {
			t.Fatalf("after request %d: %d refreshes", i, got)
		}
	}
	calls := e.api.callsTo("GET /api/orders")
	secrets := e.kc.Secrets()
	latest := secrets[len(secrets)-2] // the newest access token
	if calls[len(calls)-1].Auth != "DPoP "+latest {
		t.Fatal("the API was not called with the refreshed access token")
	}
}

// TestRefreshFailure: when Keycloak refuses the refresh token (the session was ended
// there), the user logs in again and comes back to the page, with the cart intact.
func TestRefreshFailure(t *testing.T) {
	e := newEnv(t)
	e.kc.SetAccessTTL(10 * time.Second) // every API call needs a refresh
	b := e.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {teeID}, "quantity": {"2"}}), http.StatusSeeOther)
	e.kc.EndSessions(oidctest.Alice)

	r := b.get("/orders?page=1")
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/login?next=%2Forders%3Fpage%3D1" {
		t.Fatalf("sent to %q", r.location())
	}
	r = b.get(r.location())
	mustStatus(t, r, http.StatusSeeOther)
	r = b.follow(e.kc.Authorize(r.location(), oidctest.Alice))
	if r.location() != "/orders?page=1" {
		t.Fatalf("after login again: %q", r.location())
	}
	mustContain(t, b.get("/cart"), "Shop T-shirt", `value="2"`)

	// A form post whose refresh fails comes back to the page the form was on.
	e.kc.EndSessions(oidctest.Alice)
	b.get("/cart")
	r = b.post("/checkout", url.Values{"idempotencyKey": {"k1"}})
	mustStatus(t, r, http.StatusSeeOther)
	if r.location() != "/login?next=%2Fcart" {
		t.Fatalf("a refused refresh on a form post went to %q", r.location())
	}
	if n := len(e.api.callsTo("POST /api/orders")); n != 0 {
		t.Fatalf("%d orders created without a valid login", n)
	}
}

// TestRefreshWhileKeycloakIsDown: the user stays logged in and is asked to try again.
func TestRefreshWhileKeycloakIsDown(t *testing.T) {
	e := newEnv(t)
	e.kc.SetAccessTTL(10 * time.Second)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	e.kc.SetDown(true)
	r := b.get("/orders")
	mustStatus(t, r, http.StatusServiceUnavailable)
	mustContain(t, r, "still logged in")
	e.kc.SetDown(false)
	mustStatus(t, b.get("/orders"), http.StatusOK)
}

func backchannel(b *browser, token string) *response {
	form := url.Values{}
	if token != "" {
		form.Set("logout_token", token)
	}
	b.referer = ""
	return b.postRaw("/auth/backchannel-logout", form)
}

// TestBackchannelLogout: a verified logout token from the realm ends the webapp sessions
// of that Keycloak session; forged, expired and malformed tokens end nothing.
func TestBackchannelLogout(t *testing.T) {
	e := newEnv(t)
	alice := e.browser()
	alice.loginAs(oidctest.Alice)
	bob := e.browser()
	bob.loginAs(oidctest.Bob)
	sid := e.kc.SessionOf(oidctest.Alice)
	keycloak := e.browser() // the server-to-server caller: no cookies

	other := testkit.NewIssuer(t) // someone else's key under the realm's name
	priv, _ := other.Key()
	_, realmKid := e.kc.Key()
	now := time.Now()
	refused := map[string]string{
		"no token":      "",
		"not a JWT":     "nonsense",
		"forged":        testkit.Sign(t, claimsOf(t, e.kc, sid), jose.RS256, priv, map[jose.HeaderKey]any{"kid": realmKid}),
		"expired":       e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-50 * time.Minute).Unix()}),
		"old, no exp":   e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"iat": now.Add(-time.Hour).Unix(), "exp": nil}),
		"no iat":        e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"iat": nil}),
		"no event":      e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"events": nil}),
		"other event":   e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"events": map[string]any{"http://example.com/other": map[string]any{}}}),
		"with nonce":    e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"nonce": "n"}),
		"other client":  e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"aud": "another-client"}),
		"other issuer":  e.kc.LogoutToken(sid, oidctest.Alice.Subject, testkit.Claims{"iss": "http://evil.example/realms/shop"}),
		"no sid or sub": e.kc.LogoutToken("", "", testkit.Claims{"sid": nil, "sub": nil}),
		"an ID token":   e.kc.IDTokens()[0],
	}
	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			r := backchannel(keycloak, tok)
			mustStatus(t, r, http.StatusBadRequest)
			if !strings.Contains(r.body, `"error":"invalid_request"`) || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("answer %s %v", r.body, r.Header)
			}
			if !loggedIn(t, alice) {
				t.Fatal("a refused logout token ended the session")
			}
		})
	}

	valid := e.kc.LogoutToken(sid, oidctest.Alice.Subject, nil)
	r := backchannel(keycloak, valid)
	mustStatus(t, r, http.StatusOK)
	if loggedIn(t, alice) {
		t.Fatal("the session survived back-channel logout")
	}
	if !loggedIn(t, bob) {
		t.Fatal("back-channel logout of alice ended bob's session")
	}
	mustStatus(t, backchannel(keycloak, valid), http.StatusOK) // a replay is answered, ends nothing new
}

// TestBackchannelLogoutBySubject: a token naming only the user ends all their sessions.
func TestBackchannelLogoutBySubject(t *testing.T) {
	e := newEnv(t)
	laptop, phone := e.browser(), e.browser()
	laptop.loginAs(oidctest.Alice)
	e.kc.EndSessions(oidctest.Alice) // a second, separate Keycloak session for the phone
	phone.loginAs(oidctest.Alice)
	r := backchannel(e.browser(), e.kc.LogoutToken("", oidctest.Alice.Subject, testkit.Claims{"sid": nil}))
	mustStatus(t, r, http.StatusOK)
	if loggedIn(t, laptop) || loggedIn(t, phone) {
		t.Fatal("a session of the subject survived")
	}
	// A login after the logout works.
	phone.loginAs(oidctest.Alice)
	if !loggedIn(t, phone) {
		t.Fatal("a fresh login was ended by the earlier logout")
	}
}

func claimsOf(t *testing.T, kc *oidctest.Provider, sid string) testkit.Claims {
	t.Helper()
	now := time.Now()
	return testkit.Claims{"iss": kc.URL, "aud": "webapp", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "forged",
		"sid": sid, "sub": oidctest.Alice.Subject, "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
}

// TestSessionsSharedAcrossReplicas: with Redis, a login on one replica is a login on all,
// and a back-channel logout received by one ends the session on the others.
func TestSessionsSharedAcrossReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	redisURL := func(c *app.Config) { c.RedisURL = "redis://" + mr.Addr() + "/0" }
	one := newEnv(t, redisURL)
	two := *one
	a, closeFn, err := app.New(context.Background(), one.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	two.app = a

	b := one.browser()
	b.loginAs(oidctest.Alice)
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	b.e = &two
	if !loggedIn(t, b) {
		t.Fatal("the other replica does not know the session")
	}
	mustContain(t, b.get("/cart"), "Gopher mug")
	mustStatus(t, backchannel(one.browser(), one.kc.LogoutToken(one.kc.SessionOf(oidctest.Alice), oidctest.Alice.Subject, nil)), http.StatusOK)
	if loggedIn(t, b) {
		t.Fatal("the other replica kept a session Keycloak ended")
	}
}
