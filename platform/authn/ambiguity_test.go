package authn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// countingApp serves /me behind the middleware, and /open behind RefuseAmbiguous alone,
// counting the requests that reach either handler.
func countingApp(t *testing.T, iss *testkit.Issuer) (*fiber.App, *atomic.Int64) {
	t.Helper()
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, MinKeyRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(quiet, nil)})
	handler := func(c *fiber.Ctx) error {
		served.Add(1)
		p, _ := authn.PrincipalFrom(c)
		return c.JSON(p)
	}
	app.All("/me", v.Middleware(quiet), handler)
	app.All("/open", authn.RefuseAmbiguous(), handler)
	return app, &served
}

// TestAmbiguousCredentialsAreRefused is the attacker's side of RFC 6750 section 2: a
// request that names its token twice, or anywhere but one Authorization header, is
// answered 400 invalid_request, whichever of its tokens is valid, and no handler runs.
func TestAmbiguousCredentialsAreRefused(t *testing.T) {
	iss := testkit.NewIssuer(t)
	app, served := countingApp(t, iss)
	alice := iss.Token(t, iss.User("u-1", "alice", "USER"))
	admin := iss.Token(t, iss.User("u-2", "ada", "USER", "ADMIN"))

	// Headers are set on the map directly: Go would canonicalise a name, and fasthttp
	// must see the case the client wrote.
	withHeaders := func(req *http.Request, headers []string) *http.Request {
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			req.Header[name] = append(req.Header[name], value)
		}
		return req
	}
	get := func(target string, headers ...string) *http.Request {
		return withHeaders(httptest.NewRequest(http.MethodGet, target, nil), headers)
	}
	form := func(target, body string, headers ...string) *http.Request {
		req := withHeaders(httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)), headers)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	q := url.QueryEscape

	cases := []struct {
		name string
		req  func(path string) *http.Request
		want string // error_description must mention it
	}{
		{"Bearer then Bearer, two users", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "Authorization: Bearer "+admin)
		}, "one Authorization header"},
		{"the same Bearer twice", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "Authorization: Bearer "+alice)
		}, "one Authorization header"},
		{"Bearer then Basic", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "Authorization: Basic YWxpY2U6c2VjcmV0")
		}, "one Authorization header"},
		{"Basic then Bearer", func(p string) *http.Request {
			return get(p, "Authorization: Basic YWxpY2U6c2VjcmV0", "Authorization: Bearer "+alice)
		}, "one Authorization header"},
		{"Bearer then garbage", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "Authorization: garbage")
		}, "one Authorization header"},
		{"Bearer then empty", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "Authorization: ")
		}, "one Authorization header"},
		{"second header in lower case", func(p string) *http.Request {
			return get(p, "Authorization: Bearer "+alice, "authorization: Bearer "+admin)
		}, "one Authorization header"},
		{"header and query", func(p string) *http.Request {
			return get(p+"?access_token="+q(admin), "Authorization: Bearer "+alice)
		}, "never in the URL"},
		{"header and the same token in the query", func(p string) *http.Request {
			return get(p+"?x=1&access_token="+q(alice), "Authorization: Bearer "+alice)
		}, "never in the URL"},
		{"query alone", func(p string) *http.Request { return get(p + "?access_token=" + q(alice)) }, "never in the URL"},
		{"query, name percent-encoded", func(p string) *http.Request { return get(p + "?access%5Ftoken=" + q(alice)) }, "never in the URL"},
		{"query, empty value", func(p string) *http.Request { return get(p+"?access_token=", "Authorization: Bearer "+alice) }, "never in the URL"},
		{"header and form body", func(p string) *http.Request {
			return form(p, "access_token="+q(admin), "Authorization: Bearer "+alice)
		}, "never in the body"},
		{"form body alone", func(p string) *http.Request { return form(p, "access_token="+q(alice)) }, "never in the body"},
	}
	for _, tc := range cases {
		for _, path := range []string{"/me", "/open"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				resp, body := call(t, app, tc.req(path))
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
					t.Fatalf("content type %q", ct)
				}
				var p problem.Problem
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tc.want) {
					t.Fatalf("problem %s, want a 400 saying %q", body, tc.want)
				}
				challenge := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, `Bearer realm="shop", error="invalid_request"`) || !strings.Contains(challenge, tc.want) {
					t.Fatalf("WWW-Authenticate %q, want invalid_request saying %q", challenge, tc.want)
				}
				if strings.Contains(body, alice) || strings.Contains(body, admin) || strings.Contains(body, "u-1") {
					t.Fatalf("the refusal leaks a token or a subject: %s", body)
				}
			})
		}
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("ambiguous requests reached the handler %d times", n)
	}

	// The control: one header, one token, no parameter is served, and a parameter of
	// another name is no concern of authentication.
	resp, body := call(t, app, get("/me?token=x&access_tokens=y", "Authorization: Bearer "+alice))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"Subject":"u-1"`) {
		t.Fatalf("a plain bearer request: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, app, form("/open", "name=alice")); resp.StatusCode != http.StatusOK {
		t.Fatalf("a form without a token on an open route: %d %s", resp.StatusCode, body)
	}
}

// jsonSerialized are a valid token of the realm rewritten in the JWS JSON serialization:
// the signature still verifies, but only the compact form is an access token.
func jsonSerialized(t *testing.T, iss *testkit.Issuer, claims testkit.Claims, jku string) map[string]string {
	t.Helper()
	priv, kid := iss.Key()
	withKid := iss.Token(t, claims)
	// Signed with no kid in the protected header, so the unprotected one supplies it.
	noKid := testkit.Sign(t, claims, jose.RS256, priv, nil)
	return map[string]string{
		"flattened":                          testkit.JWSJSON(t, withKid, false, nil),
		"general":                            testkit.JWSJSON(t, withKid, true, nil),
		"flattened, kid unprotected":         testkit.JWSJSON(t, noKid, false, map[string]any{"kid": kid}),
		"general, kid unprotected":           testkit.JWSJSON(t, noKid, true, map[string]any{"kid": kid}),
		"flattened, kid and jku unprotected": testkit.JWSJSON(t, noKid, false, map[string]any{"kid": kid, "jku": jku}),
	}
}

// TestOnlyCompactTokens: a token in the JWS JSON serialization is refused by the
// verifier, by the key set (which also checks the webapp's ID and logout tokens), and
// through the middleware, though its signature is the realm's.
func TestOnlyCompactTokens(t *testing.T) {
	iss := testkit.NewIssuer(t)
	var jkuHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { jkuHits.Add(1) }))
	defer attacker.Close()
	app, served := countingApp(t, iss)
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	if err != nil {
		t.Fatal(err)
	}
	keys := authn.NewKeySet(http.DefaultClient, func(context.Context) (string, error) {
		return iss.URL + "/protocol/openid-connect/certs", nil
	}, []string{"RS256"}, time.Minute)

	claims := iss.User("u-1", "alice", "USER")
	// The control: the same token in compact form passes all three.
	compact := iss.Token(t, claims)
	if _, err := v.Verify(t.Context(), compact); err != nil {
		t.Fatalf("compact token: %v", err)
	}
	if _, err := keys.VerifySignature(t.Context(), compact); err != nil {
		t.Fatalf("compact token at the key set: %v", err)
	}
	for name, token := range jsonSerialized(t, iss, claims, attacker.URL) {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), token); !errors.Is(err, authn.ErrNotCompact) {
				t.Errorf("Verify: %v, want ErrNotCompact", err)
			}
			if _, err := keys.VerifySignature(t.Context(), token); err == nil {
				t.Error("the key set verified it")
			}
			resp, body := call(t, app, bearer(token))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) || !strings.Contains(got, "compact") {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("JSON-serialized tokens reached the handler %d times", n)
	}
	if n := jkuHits.Load(); n != 0 {
		t.Fatalf("keys were fetched from a token-supplied jku %d times", n)
	}
}

func TestRequireCompact(t *testing.T) {
	for token, ok := range map[string]bool{
		"eyJh.eyJz.c2ln":   true,
		"a-_0.b.c":         true,
		"eyJh.eyJz.":       true, // empty signature: the signature check refuses it
		"eyJh.eyJz":        false,
		"a.b.c.d.e":        false,
		"eyJh.eyJz.c2ln=":  false,
		"eyJh.eyJz.c2l+":   false,
		"eyJh.eyJz.c2l/":   false,
		" eyJh.eyJz.c2ln":  false,
		"eyJh.eyJz.c2ln\n": false,
		`{"payload":"eyJz","protected":"eyJh","signature":"c2ln"}`: false,
		"": false,
	} {
		if err := authn.RequireCompact(token); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", token, err, ok)
		}
	}
}
