package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"example.com/shop/platform/dpop"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/oidctest"
)

// TestLoginIsFAPI: the browser sees only the client id and a request_uri; the pushed
// request binds the code to the login's DPoP key; the tokens come back bound to it, and a
// refresh keeps them bound.
func TestLoginIsFAPI(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	l := newLogin(t, false)
	to, err := c.AuthCodeURL(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(to)
	if q := u.Query(); len(q) != 2 || q.Get("client_id") != "webapp" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("the browser is sent to %q; want only client_id and request_uri", to)
	}
	key, err := dpop.ParseKey(l.DPoPKey)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(kc.Authorize(to, oidctest.Alice))
	if pushed := kc.AuthorizationRequests()[0]; pushed.Get("dpop_jkt") != key.Thumbprint() {
		t.Fatalf("dpop_jkt %q, want the login key's %q", pushed.Get("dpop_jkt"), key.Thumbprint())
	}
	user, tok, err := c.Exchange(context.Background(), back.Query().Get("code"), l)
	if err != nil {
		t.Fatal(err)
	}
	if got := claim(t, tok.Access, "cnf"); got["jkt"] != key.Thumbprint() || !bytes.Equal(tok.DPoPKey, l.DPoPKey) {
		t.Fatalf("access token cnf %v; session key kept: %t", got, bytes.Equal(tok.DPoPKey, l.DPoPKey))
	}
	_, fresh, err := c.Refresh(context.Background(), user, tok)
	if err != nil {
		t.Fatal(err)
	}
	if claim(t, fresh.Access, "cnf")["jkt"] != key.Thumbprint() || !bytes.Equal(fresh.DPoPKey, l.DPoPKey) {
		t.Fatal("the refreshed token is not bound to the login's key")
	}
	if r := kc.Refused(); len(r) != 0 {
		t.Fatalf("the realm refused requests of an honest login: %q", r)
	}
}

// TestCodeIsBoundToTheLoginKey: a code redeemed with another login's key (a thief's) is
// refused, and a session without a key cannot refresh.
func TestCodeIsBoundToTheLoginKey(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	l := newLogin(t, false)
	to, err := c.AuthCodeURL(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(kc.Authorize(to, oidctest.Alice))
	thief := newLogin(t, false)
	thief.State, thief.Nonce, thief.Verifier = l.State, l.Nonce, l.Verifier
	if _, _, err := c.Exchange(context.Background(), back.Query().Get("code"), thief); !errors.Is(err, auth.ErrRejected) {
		t.Fatalf("a code redeemed with another key: %v, want refused", err)
	}
	if r := kc.Refused(); len(r) != 1 || !strings.Contains(r[0], "dpop_jkt") {
		t.Fatalf("refused for %q", r)
	}
	u, tok := login(t, c, kc, oidctest.Alice)
	tok.DPoPKey = nil
	if _, _, err := c.Refresh(context.Background(), u, tok); !errors.Is(err, auth.ErrRejected) {
		t.Fatalf("refresh without a key: %v", err)
	}
}

func TestCheckIssuer(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	if err := c.CheckIssuer(context.Background(), kc.URL); err != nil {
		t.Fatal(err)
	}
	for _, iss := range []string{"", "https://evil.example/realms/shop", kc.URL + "/"} {
		if err := c.CheckIssuer(context.Background(), iss); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("iss %q: %v, want refused", iss, err)
		}
	}
}

// TestDPoPNonce: a token endpoint that asks for a nonce gets it in a second proof.
func TestDPoPNonce(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	kc.RequireNonce("server-nonce-1")
	if u, _ := login(t, c, kc, oidctest.Bob); u.Subject != oidctest.Bob.Subject {
		t.Fatal(u)
	}
}

// recorder keeps every form the client posts to the realm, to replay one.
type recorder struct {
	mu    sync.Mutex
	posts []*http.Request
	forms []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.posts, r.forms = append(r.posts, req.Clone(context.Background())), append(r.forms, string(b))
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestClientAuthentication is the token endpoint from the attacker's side: a recorded
// request sent again (its client assertion reused), and the old client secret. Both are
// refused as invalid_client; the assertions the client sends are single-use and short.
func TestClientAuthentication(t *testing.T) {
	kc := newProvider(t)
	rec := &recorder{}
	c := newClient(t, kc, "", &http.Client{Transport: rec})
	login(t, c, kc, oidctest.Alice)
	if len(rec.forms) != 2 {
		t.Fatalf("%d posts for one login, want PAR and token", len(rec.forms))
	}
	ids := map[string]bool{}
	for _, f := range rec.forms {
		v, _ := url.ParseQuery(f)
		a := v.Get("client_assertion")
		if v.Get("client_secret") != "" || a == "" {
			t.Fatalf("a post without an assertion, or with a secret: %s", f)
		}
		cl := payload(t, a)
		if cl["aud"] != kc.URL || cl["iss"] != "webapp" || cl["sub"] != "webapp" || cl["exp"].(float64)-cl["iat"].(float64) > 60 {
			t.Fatalf("assertion claims %v", cl)
		}
		ids[cl["jti"].(string)] = true
	}
	if len(ids) != 2 {
		t.Fatal("two requests shared an assertion id")
	}

	tokenURL := kc.URL + "/protocol/openid-connect/token"
	replay := func(body string, header http.Header) int {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(body))
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := len(kc.Refused())
	if st := replay(rec.forms[1], rec.posts[1].Header); st != http.StatusUnauthorized {
		t.Fatalf("a replayed token request answered %d", st)
	}
	secret := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"webapp"}, "client_secret": {"webapp-dev-secret"}}
	if st := replay(secret.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}); st != http.StatusUnauthorized {
		t.Fatalf("a client secret answered %d", st)
	}
	r := kc.Refused()[before:]
	if len(r) != 2 || !strings.Contains(r[0], "used before") || !strings.Contains(r[1], "client secret") {
		t.Fatalf("refused for %q", r)
	}
}

func claim(t *testing.T, jwt, name string) map[string]any {
	t.Helper()
	m, _ := payload(t, jwt)[name].(map[string]any)
	return m
}

func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
