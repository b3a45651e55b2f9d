package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/app"
	"example.com/shop/webapp/internal/oidctest"
)

const publicURL = "http://shop.test"

// env is one webapp wired as in production (app.New) against a fake realm and a fake API.
type env struct {
	t    *testing.T
	kc   *oidctest.Provider
	api  *fakeAPI
	app  *fiber.App
	cfg  app.Config
	logs *testkit.Logs
}

func newEnv(t *testing.T, tweak ...func(*app.Config)) *env {
	t.Helper()
	kc := oidctest.New(t, "webapp", publicURL+"/auth/callback")
	api := newFakeAPI(t, kc.Issuer)
	cfg := app.Config{
		Addr: ":0", PublicURL: publicURL, Issuer: kc.URL, Audience: "shop-api",
		ClientID: "webapp", GatewayURL: api.srv.URL, GatewayTimeout: 5 * time.Second,
		SessionIdle: 30 * time.Minute, SessionMax: 10 * time.Hour,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	logs := &testkit.Logs{}
	a, closeFn, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	// The realm trusts the keys the webapp's JWKS endpoint lists (`use.jwks.url`).
	kc.ClientKeys = func() jose.JSONWebKeySet {
		resp, err := a.Test(httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("the webapp's JWKS: %d keys, %v", len(set.Keys), err)
		}
		return set
	}
	e := &env{t: t, kc: kc, api: api, app: a, cfg: cfg, logs: logs}
	t.Cleanup(func() {
		// Tokens never reach the logs either.
		for _, tok := range append(kc.Secrets(), kc.IDTokens()...) {
			if strings.Contains(logs.String(), tok) {
				t.Error("a token was logged")
			}
		}
	})
	return e
}

// browser is a cookie-keeping client of the webapp, like a real browser minus JavaScript.
type browser struct {
	e       *env
	cookies map[string]string
	// referer is sent with form posts, as browsers do (same origin, Referrer-Policy
	// same-origin).
	referer string
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]string{}} }

// response is an answer with its body read.
type response struct {
	*http.Response
	body string
}

func (r *response) location() string { return r.Header.Get("Location") }

// do sends req with the browser's cookies, keeps the cookies it sets, and checks that no
// access or refresh token appears anywhere in the answer, and an ID token only as the
// id_token_hint of a redirect to the realm's end-session endpoint.
func (b *browser) do(req *http.Request) *response {
	b.e.t.Helper()
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.e.app.Test(req, -1)
	if err != nil {
		b.e.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	r := &response{Response: resp, body: string(raw)}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	b.e.assertNoTokens(r)
	return r
}

func (e *env) assertNoTokens(r *response) {
	e.t.Helper()
	var headers strings.Builder
	for name, values := range r.Header {
		if name == "Location" {
			continue
		}
		headers.WriteString(name + ": " + strings.Join(values, ", ") + "\n")
	}
	everywhere := r.body + headers.String() + r.location()
	for _, tok := range e.kc.Secrets() {
		if strings.Contains(everywhere, tok) || strings.Contains(everywhere, url.QueryEscape(tok)) {
			e.t.Fatalf("an access or refresh token reached the browser (%d %s)", r.StatusCode, r.Request.URL)
		}
	}
	for _, tok := range e.kc.IDTokens() {
		if strings.Contains(headers.String(), tok) {
			e.t.Fatalf("an ID token reached a header or a cookie")
		}
		if loc := r.location(); strings.Contains(loc, url.QueryEscape(tok)) || strings.Contains(loc, tok) {
			e.t.Fatalf("an ID token appears in a URL: %s", loc)
		}
		// The one page that holds it is the logout page, as the hint in the form it posts
		// to Keycloak's end-session endpoint.
		if strings.Contains(r.body, tok) && (strings.Count(r.body, tok) != 1 ||
			!strings.Contains(r.body, `<form id="end-session" method="post" action="`+e.kc.URL+`/protocol/openid-connect/logout">`) ||
			!strings.Contains(r.body, `<input type="hidden" name="id_token_hint" value="`+tok+`">`)) {
			e.t.Fatalf("an ID token reached a page other than as the logout form's hint (%d %s)", r.StatusCode, r.Request.URL)
		}
	}
}

func (b *browser) get(path string) *response {
	b.e.t.Helper()
	r := b.do(httptest.NewRequest(http.MethodGet, publicURL+path, nil))
	b.referer = publicURL + path
	return r
}

// post submits a form with the CSRF token the browser holds, as a page's form would.
func (b *browser) post(path string, form url.Values) *response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", b.csrf())
	}
	return b.postRaw(path, form)
}

func (b *browser) postRaw(path string, form url.Values) *response {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, publicURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.referer != "" {
		req.Header.Set("Referer", b.referer)
	}
	return b.do(req)
}

// csrf is the browser's CSRF token; it is the same value the pages put into their forms.
func (b *browser) csrf() string {
	b.e.t.Helper()
	if tok := b.cookies["shop_csrf"]; tok != "" {
		return tok
	}
	b.get("/cart")
	tok := b.cookies["shop_csrf"]
	if tok == "" {
		b.e.t.Fatal("no CSRF cookie after a page view")
	}
	return tok
}

func (b *browser) sessionID() string { return b.cookies["shop_session"] }

// login logs in as u through the fake realm, starting from /login?next=next, and returns
// the answer of the callback.
func (b *browser) login(u oidctest.User, next string) *response {
	b.e.t.Helper()
	start := b.get("/login?next=" + url.QueryEscape(next))
	if start.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("/login: %d %s", start.StatusCode, start.body)
	}
	return b.follow(b.e.kc.Authorize(start.location(), u))
}

// follow requests a URL of the webapp given absolutely (a redirect from the realm).
func (b *browser) follow(abs string) *response {
	b.e.t.Helper()
	path, ok := strings.CutPrefix(abs, publicURL)
	if !ok {
		b.e.t.Fatalf("not a webapp URL: %s", abs)
	}
	return b.get(path)
}

// loginAs logs in and checks it worked.
func (b *browser) loginAs(u oidctest.User) {
	b.e.t.Helper()
	r := b.login(u, "/")
	if r.StatusCode != http.StatusSeeOther || r.location() != "/" {
		b.e.t.Fatalf("login as %s: %d %s %s", u.Username, r.StatusCode, r.location(), r.body)
	}
	// Like a browser, land on the page; it carries the new session's CSRF token.
	mustStatus(b.e.t, b.get("/"), http.StatusOK)
}

// adminLogin logs ada in and completes the admin:read step-up.
func (b *browser) adminLogin() {
	b.e.t.Helper()
	b.loginAs(oidctest.Ada)
	r := b.get("/admin")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login?") {
		b.e.t.Fatalf("/admin before step-up: %d %s", r.StatusCode, r.location())
	}
	r = b.get(r.location())
	if r.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("step-up: %d %s", r.StatusCode, r.body)
	}
	r = b.follow(b.e.kc.Authorize(r.location(), oidctest.Ada))
	if r.StatusCode != http.StatusSeeOther || r.location() != "/admin" {
		b.e.t.Fatalf("step-up callback: %d %s %s", r.StatusCode, r.location(), r.body)
	}
	mustStatus(b.e.t, b.get("/admin"), http.StatusOK)
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// formValue extracts an input's value from a page.
func formValue(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no input %q on the page", name)
	}
	return m[1]
}

func mustContain(t *testing.T, r *response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.body, w) {
			t.Fatalf("%s %s: page lacks %q:\n%s", r.Request.Method, r.Request.URL.Path, w, r.body)
		}
	}
}

func mustStatus(t *testing.T, r *response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d (Location %q):\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.location(), r.body)
	}
}
