package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/app"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/oidctest"
)

// startLogin begins a login and returns the callback URL the realm sends back for u.
func startLogin(t *testing.T, b *browser, u oidctest.User) string {
	t.Helper()
	r := b.get("/login?next=%2Forders")
	mustStatus(t, r, http.StatusSeeOther)
	return b.e.kc.Authorize(r.location(), u)
}

func loggedIn(t *testing.T, b *browser) bool {
	t.Helper()
	return b.get("/orders").StatusCode == http.StatusOK
}

// TestLoginRequest: the authorization request is pushed (PAR) and the browser carries only
// the client id and request_uri; the pushed request carries PKCE S256, state, nonce and
// the DPoP key's thumbprint, all fresh per login, and asks for no admin scope.
func TestLoginRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r1 := b.get("/login?next=/cart")
	r2 := b.get("/login?next=/cart")
	var callbacks []string
	for _, r := range []*response{r1, r2} {
		if q := query(t, r.location()); len(q) != 2 || q.Get("client_id") != "webapp" || q.Get("request_uri") == "" {
			t.Fatalf("the browser is sent to %q; want only client_id and request_uri", r.location())
		}
		callbacks = append(callbacks, e.kc.Authorize(r.location(), oidctest.Alice))
	}
	pushed := e.kc.AuthorizationRequests()
	q1, q2 := pushed[0], pushed[1]
	for _, k := range []string{"state", "nonce", "code_challenge", "dpop_jkt"} {
		if q1.Get(k) == "" || q1.Get(k) == q2.Get(k) {
			t.Errorf("%s is missing or reused: %q %q", k, q1.Get(k), q2.Get(k))
		}
	}
	if q1.Get("code_challenge_method") != "S256" || q1.Get("scope") != "openid profile email" || q1.Get("redirect_uri") != publicURL+"/auth/callback" {
		t.Errorf("authorization request %v", q1)
	}
	if strings.Contains(r1.location(), "code_verifier") {
		t.Error("the PKCE verifier left the server")
	}
	// Both logins in flight (two tabs) can complete.
	mustStatus(t, b.follow(callbacks[0]), http.StatusSeeOther)
	if !loggedIn(t, b) {
		t.Fatal("not logged in")
	}
}

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestCallbackRefusals: each broken or forged callback shows a clear page and logs no one in.
func TestCallbackRefusals(t *testing.T) {
	cases := []struct {
		name   string
		status int
		say    string
		// callback turns a good callback URL into the one to send.
		callback func(t *testing.T, e *env, b *browser, good string) string
		tamper   func(testkit.Claims)
	}{
		{name: "missing state", status: 400, say: "expired or was already used",
			callback: func(_ *testing.T, _ *env, _ *browser, good string) string { return without(good, "state") }},
		{name: "wrong state", status: 400, say: "expired or was already used",
			callback: func(_ *testing.T, _ *env, _ *browser, good string) string {
				return with(good, "state", "forged-state-value")
			}},
		{name: "state of another browser", status: 400, say: "expired or was already used",
			callback: func(t *testing.T, e *env, _ *browser, good string) string {
				other := e.browser()
				return with(good, "state", query(t, other.get("/login").location()).Get("state"))
			}},
		{name: "missing code", status: 400, say: "sent no answer",
			callback: func(_ *testing.T, _ *env, _ *browser, good string) string { return without(good, "code") }},
		{name: "wrong nonce", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { c["nonce"] = "a-nonce-of-another-login" }},
		{name: "ID token without nonce", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { delete(c, "nonce") }},
		{name: "ID token for another client", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { c["aud"] = "another-client"; c["azp"] = "another-client" }},
		{name: "ID token from another issuer", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { c["iss"] = "http://evil.example/realms/shop" }},
		{name: "expired ID token", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { c["exp"] = int64(1) }},
		{name: "ID token of another user", status: 400, say: "could not be verified",
			tamper: func(c testkit.Claims) { c["sub"] = oidctest.Bob.Subject }},
		{name: "cancelled at Keycloak", status: 401, say: "cancelled",
			callback: func(_ *testing.T, _ *env, _ *browser, good string) string {
				return with(with(without(good, "code"), "error", "access_denied"), "error_description", "Call 555-0100 to unlock")
			}},
		{name: "Keycloak error", status: 401, say: "having trouble",
			callback: func(_ *testing.T, _ *env, _ *browser, good string) string {
				return with(without(good, "code"), "error", "temporarily_unavailable")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.kc.TamperID = tc.tamper
			b := e.browser()
			cb := startLogin(t, b, oidctest.Alice)
			if tc.callback != nil {
				cb = tc.callback(t, e, b, cb)
			}
			r := b.follow(cb)
			mustStatus(t, r, tc.status)
			mustContain(t, r, "You are not logged in", tc.say, `id="login"`)
			if strings.Contains(r.body, "555-0100") {
				t.Error("the page repeats Keycloak's error_description, which anyone can put in the URL")
			}
			e.kc.TamperID = nil
			if loggedIn(t, b) {
				t.Fatal("a refused callback logged the user in")
			}
		})
	}
}

func with(raw, k, v string) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func without(raw, k string) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Del(k)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestReplayedCallback: a callback URL works once; its code never works again, not even
// with a fresh state of the same browser.
func TestReplayedCallback(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	cb := startLogin(t, b, oidctest.Alice)
	mustStatus(t, b.follow(cb), http.StatusSeeOther)

	// The same URL again, in the same browser: the state is spent.
	r := b.follow(cb)
	mustStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, "expired or was already used")

	// The code under a fresh state of an attacker's browser: Keycloak refuses the code.
	attacker := e.browser()
	fresh := query(t, attacker.get("/login").location()).Get("state")
	r = attacker.follow(with(cb, "state", fresh))
	mustStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, "expired or was already used")
	if loggedIn(t, attacker) {
		t.Fatal("a replayed code logged someone in")
	}
}

// TestLoginWhileKeycloakIsDown: a clear "try again" page, the cart kept.
func TestLoginWhileKeycloakIsDown(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	cb := startLogin(t, b, oidctest.Alice)
	e.kc.SetDown(true)
	r := b.follow(cb)
	mustStatus(t, r, http.StatusServiceUnavailable)
	mustContain(t, r, "not answering", "cart is kept")
	e.kc.SetDown(false)
	mustContain(t, b.get("/cart"), "Gopher mug")
}

// TestLoginStartWhileKeycloakIsDown: the shop's own "try again" page, not a redirect to a
// Keycloak that cannot answer; the cart is kept, and login works once Keycloak is back.
func TestLoginStartWhileKeycloakIsDown(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	mustStatus(t, b.post("/cart/items", url.Values{"productId": {mugID}}), http.StatusSeeOther)
	startLogin(t, b, oidctest.Alice) // discovery is cached from here on
	e.kc.SetDown(true)
	r := b.get("/login?next=/orders")
	mustStatus(t, r, http.StatusServiceUnavailable)
	mustContain(t, r, "not possible right now", "cart is kept")
	e.kc.SetDown(false)
	mustStatus(t, b.get("/login?next=/orders"), http.StatusSeeOther)
	mustContain(t, b.get("/cart"), "Gopher mug")
}

// TestOpenRedirects: whatever `next` says, the login ends on a page of this site.
func TestOpenRedirects(t *testing.T) {
	e := newEnv(t)
	cases := map[string]string{
		"/orders?page=2":                    "/orders?page=2",
		"/cart":                             "/cart",
		"":                                  "/",
		"//evil.example":                    "/",
		"//evil.example/path":               "/",
		"/\\evil.example":                   "/",
		"\\\\evil.example":                  "/",
		"https://evil.example":              "/",
		"http:evil.example":                 "/",
		"javascript:alert(1)":               "/",
		"JavaScript:alert(document.cookie)": "/",
		"/%2F%2Fevil.example":               "/",
		"/%252F%252Fevil.example":           "/",
		"%2F%2Fevil.example":                "/",
		"/%5Cevil.example":                  "/",
		"/\t/evil.example":                  "/",
		"/\r\nLocation: http://evil":        "/",
		"evil.example":                      "/",
		"/login?next=//evil.example":        "/",
		"/auth/callback?code=x":             "/",
	}
	for next, want := range cases {
		t.Run(next, func(t *testing.T) {
			b := e.browser()
			r := b.login(oidctest.Alice, next)
			mustStatus(t, r, http.StatusSeeOther)
			if r.location() != want {
				t.Fatalf("next=%q ended at %q, want %q", next, r.location(), want)
			}
		})
	}
}

// TestSessionFixation: a session id planted before login is not the one after it, and is
// worth nothing afterwards; an id the server never issued is not adopted.
func TestSessionFixation(t *testing.T) {
	e := newEnv(t)
	attacker := e.browser()
	mustStatus(t, attacker.get("/cart"), http.StatusOK)
	planted := attacker.sessionID()
	if planted == "" {
		t.Fatal("no session cookie")
	}

	victim := e.browser()
	victim.cookies["shop_session"] = planted
	victim.cookies["shop_csrf"] = attacker.cookies["shop_csrf"]
	victim.loginAs(oidctest.Alice)
	if got := victim.sessionID(); got == "" || got == planted {
		t.Fatalf("session id after login %q; the planted id was %q", got, planted)
	}
	if !loggedIn(t, victim) {
		t.Fatal("victim not logged in")
	}
	// The attacker's copy of the planted id opens nothing.
	r := attacker.get("/orders")
	mustStatus(t, r, http.StatusSeeOther)
	// The planted CSRF token died with the old session.
	r = victim.postRaw("/cart/items", url.Values{"productId": {mugID}, "_csrf": {attacker.cookies["shop_csrf"]}})
	mustStatus(t, r, http.StatusForbidden)

	stranger := e.browser()
	stranger.cookies["shop_session"] = "chosen-by-the-attacker"
	stranger.get("/cart")
	if stranger.sessionID() == "chosen-by-the-attacker" {
		t.Fatal("the server adopted a session id it never issued")
	}
}

// TestSessionCookies: HttpOnly and SameSite=Lax always; Secure and the __Host- prefix when
// served over HTTPS.
func TestSessionCookies(t *testing.T) {
	for _, tc := range []struct {
		public string
		names  []string
		secure bool
	}{
		{"http://shop.test", []string{"shop_session", "shop_csrf"}, false},
		{"https://shop.test", []string{"__Host-shop_session", "__Host-shop_csrf"}, true},
	} {
		t.Run(tc.public, func(t *testing.T) {
			e := newEnv(t, func(c *app.Config) {
				c.PublicURL = tc.public
				if tc.secure {
					c.ClientKeyFile = clientKeyFile(t)
				}
			})
			r := e.browser().get("/cart")
			got := map[string]*http.Cookie{}
			for _, c := range r.Cookies() {
				got[c.Name] = c
			}
			for _, name := range tc.names {
				c, ok := got[name]
				if !ok {
					t.Fatalf("no cookie %s in %v", name, r.Header["Set-Cookie"])
				}
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tc.secure || c.Path != "/" || c.Domain != "" {
					t.Errorf("cookie %s: %+v", name, c)
				}
				if c.MaxAge > 0 || !c.Expires.IsZero() {
					t.Errorf("cookie %s outlives the browser session: %+v", name, c)
				}
			}
		})
	}
}

// TestLogoutPostsTheHintToKeycloak: logging out ends the shop's session and answers a page
// whose form posts the ID token to Keycloak's end-session endpoint as a hidden field: no
// redirect, so the token is in no Location header and no URL. Only that page may run a
// script, the webapp's own one that submits the form; the page is never cached.
func TestLogoutPostsTheHintToKeycloak(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.loginAs(oidctest.Alice)
	home := b.get("/")
	if csp := home.Header.Get("Content-Security-Policy"); strings.Contains(csp, "script-src") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("a page other than logout allows scripts: %q", csp)
	}

	r := b.post("/logout", nil)
	mustStatus(t, r, http.StatusOK)
	if loc := r.location(); loc != "" {
		t.Fatalf("logout redirects to %q", loc)
	}
	endSession := e.kc.URL + "/protocol/openid-connect/logout"
	mustContain(t, r, `<form id="end-session" method="post" action="`+endSession+`">`,
		`<input type="hidden" name="client_id" value="webapp">`,
		`<input type="hidden" name="post_logout_redirect_uri" value="`+publicURL+`/">`,
		`<button id="end-session-continue" type="submit"`,
		`<script src="/static/logout.js"></script>`)
	hint := formValue(t, r.body, "id_token_hint")
	if !slices.Contains(e.kc.IDTokens(), hint) {
		t.Fatalf("the hint %q is not an ID token the realm issued", hint)
	}
	csp := r.Header.Get("Content-Security-Policy")
	kc, _ := url.Parse(e.kc.URL)
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "form-action 'self' " + kc.Scheme + "://" + kc.Host} {
		if !strings.Contains(csp, want) {
			t.Errorf("the logout page's policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(r.body, "<script>") {
		t.Error("the logout page runs inline script")
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("the page holding the ID token may be cached: %q", cc)
	}
	if loggedIn(t, b) {
		t.Fatal("the shop's session survived logout")
	}

	js := b.get("/static/logout.js")
	mustStatus(t, js, http.StatusOK)
	if ct := js.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Fatalf("logout.js served as %q", ct)
	}
	mustContain(t, js, `getElementById("end-session").submit()`)

	// Logged out already: nothing to end at Keycloak, back to the shop.
	again := b.post("/logout", nil)
	mustStatus(t, again, http.StatusSeeOther)
	if again.location() != "/" {
		t.Fatalf("a second logout goes to %q", again.location())
	}
}

// clientKeyFile writes a private_key_jwt key file, as `make certs` does, and returns its path.
func clientKeyFile(t *testing.T) string {
	t.Helper()
	key, err := auth.EncodeClientKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "webapp-client-key.pem")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
