// Package oidctest extends platform/testkit's fake realm with what a web login needs: the
// user's trip through the authorization endpoint, a token endpoint for the authorization
// code (with PKCE) and refresh grants (with Keycloak's refresh-token rotation and reuse
// detection), and logout tokens. Tests drive it; it is not used by the webapp itself.
package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/platform/testkit"
)

// User is an account of the fake realm.
type User struct {
	Subject  string
	Username string
	Name     string
	Email    string
	Roles    []string
}

// Alice and Ada mirror the realm's demo shopper and admin.
var (
	Alice = User{Subject: "5b7c1b9e-0a4e-4c55-9d1a-a11ce0000001", Username: "alice", Name: "Alice Shopper", Email: "alice@example.com", Roles: []string{"USER"}}
	Bob   = User{Subject: "5b7c1b9e-0a4e-4c55-9d1a-b0b000000002", Username: "bob", Name: "Bob Shopper", Email: "bob@example.com", Roles: []string{"USER"}}
	Ada   = User{Subject: "5b7c1b9e-0a4e-4c55-9d1a-ada000000003", Username: "ada", Name: "Ada Admin", Email: "ada@example.com", Roles: []string{"USER", "ADMIN"}}
)

// Provider is the fake realm with a login.
type Provider struct {
	*testkit.Issuer
	t            testing.TB
	ClientID     string
	ClientSecret string
	RedirectURL  string

	mu sync.Mutex
	// AccessTTL is the lifetime of access tokens minted from now on.
	AccessTTL time.Duration
	// TamperID, when set, changes ID token claims before signing (forged logins).
	TamperID func(testkit.Claims)
	// ReserializeID, when set, rewrites the signed ID token, signature intact, before it is
	// sent (e.g. in the JWS JSON serialization).
	ReserializeID func(compact string) string
	// Down makes the token endpoint answer 503.
	Down  bool
	delay time.Duration

	codes      map[string]*grant
	families   map[string]*family // by current refresh token
	retired    map[string]*family // by used refresh token
	issued     []string           // access and refresh tokens
	idTokens   []string
	refreshes  int
	authorized []url.Values // every authorization request seen
}

type grant struct {
	user      User
	nonce     string
	challenge string
	redirect  string
	scope     string
	sid       string
	used      bool
	family    *family
}

type family struct {
	user    User
	scope   string
	sid     string
	nonce   string
	current string
	revoked bool
}

// New starts the fake realm for the client.
func New(t testing.TB, clientID, clientSecret, redirectURL string) *Provider {
	p := &Provider{
		Issuer: testkit.NewIssuer(t), t: t, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
		AccessTTL: 5 * time.Minute, codes: map[string]*grant{}, families: map[string]*family{}, retired: map[string]*family{},
	}
	p.Handle(t, "POST /realms/shop/protocol/openid-connect/token", p.token)
	return p
}

// Authorize plays the user at Keycloak's login page for the authorization URL the webapp
// redirected to, and returns the URL Keycloak sends the browser back to. It checks the
// request as the realm would (client, exact redirect URI, code flow, PKCE S256, state and
// nonce present) and, like the realm's admin:read guard, refuses that scope to a user
// without ADMIN.
func (p *Provider) Authorize(authURL string, u User) string {
	p.t.Helper()
	au, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, p.URL+"/protocol/openid-connect/auth?") {
		p.t.Fatalf("not an authorization URL of the realm: %q", authURL)
	}
	q := au.Query()
	p.mu.Lock()
	p.authorized = append(p.authorized, q)
	p.mu.Unlock()
	switch {
	case q.Get("client_id") != p.ClientID:
		p.t.Fatalf("authorization request for client %q", q.Get("client_id"))
	case q.Get("redirect_uri") != p.RedirectURL:
		p.t.Fatalf("redirect_uri %q is not the registered %q", q.Get("redirect_uri"), p.RedirectURL)
	case q.Get("response_type") != "code":
		p.t.Fatalf("response_type %q", q.Get("response_type"))
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43:
		p.t.Fatalf("PKCE S256 missing: %v", q)
	case len(q.Get("state")) < 16 || len(q.Get("nonce")) < 16:
		p.t.Fatalf("state or nonce missing or short: %v", q)
	}
	scope := q.Get("scope")
	back := url.Values{"state": {q.Get("state")}}
	if slices.Contains(strings.Fields(scope), "admin:read") && !slices.Contains(u.Roles, "ADMIN") {
		back.Set("error", "access_denied")
		back.Set("error_description", "The admin:read scope needs the ADMIN role.")
		return p.RedirectURL + "?" + back.Encode()
	}
	code := uuid.NewString()
	p.mu.Lock()
	sid := uuid.NewString()
	// A second login on the same Keycloak session (step-up) keeps its sid.
	for _, f := range p.families {
		if f.user.Subject == u.Subject && !f.revoked {
			sid = f.sid
		}
	}
	p.codes[code] = &grant{user: u, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), scope: scope, sid: sid}
	p.mu.Unlock()
	back.Set("code", code)
	return p.RedirectURL + "?" + back.Encode()
}

// AuthorizationRequests returns the query of every authorization request seen.
func (p *Provider) AuthorizationRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.authorized)
}

// Secrets returns every access and refresh token minted so far: none may ever reach a
// browser.
func (p *Provider) Secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.issued)
}

// IDTokens returns every ID token minted so far.
func (p *Provider) IDTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.idTokens)
}

// Refreshes counts successful refresh grants.
func (p *Provider) Refreshes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes
}

// SessionOf returns the Keycloak session id (sid) of the user's live login.
func (p *Provider) SessionOf(u User) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.families {
		if f.user.Subject == u.Subject && !f.revoked {
			return f.sid
		}
	}
	return ""
}

// EndSessions revokes every refresh token of the user, as an admin ending their sessions
// in Keycloak does.
func (p *Provider) EndSessions(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.families {
		if f.user.Subject == u.Subject {
			f.revoked = true
		}
	}
}

// SetRoles changes the realm roles of the user's live logins, as an admin editing the
// account does: tokens minted from now on carry them.
func (p *Provider) SetRoles(u User, roles ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.families {
		if f.user.Subject == u.Subject {
			f.user.Roles = roles
		}
	}
}

// SetAccessTTL changes the lifetime of access tokens minted from now on.
func (p *Provider) SetAccessTTL(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.AccessTTL = d
}

// SetDown makes the token endpoint, discovery and keys fail (or work again).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Down = down
	p.Issuer.SetDown(down)
}

// LogoutToken mints a back-channel logout token as Keycloak sends it; more changes or
// deletes (nil) claims.
func (p *Provider) LogoutToken(sid, sub string, more testkit.Claims) string {
	p.t.Helper()
	now := time.Now()
	c := testkit.Claims{
		"iss": p.URL, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": uuid.NewString(), "typ": "Logout", "sid": sid, "sub": sub,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	return p.Token(p.t, c.With(more))
}

// SetTokenDelay makes the token endpoint answer after d, so calls overlap.
func (p *Provider) SetTokenDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	time.Sleep(delay)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Down {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != p.ClientID || secret != p.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := p.codes[r.PostForm.Get("code")]
		switch {
		case !ok:
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		case g.used:
			// Keycloak: a code used twice also revokes what the first use issued.
			if g.family != nil {
				g.family.revoked = true
			}
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		case r.PostForm.Get("redirect_uri") != g.redirect:
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		case s256(r.PostForm.Get("code_verifier")) != g.challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		g.used = true
		g.family = &family{user: g.user, scope: g.scope, sid: g.sid, nonce: g.nonce}
		p.respond(w, g.family)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		f, ok := p.families[rt]
		if !ok {
			// Reuse detection: a refresh token used before ends its whole login.
			if old, reused := p.retired[rt]; reused {
				old.revoked = true
			}
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if f.revoked {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		delete(p.families, rt)
		p.retired[rt] = f
		p.refreshes++
		p.respond(w, f)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// respond mints a token set for f and rotates its refresh token. Callers hold p.mu.
func (p *Provider) respond(w http.ResponseWriter, f *family) {
	u := f.user
	ttl := p.AccessTTL
	access := p.Token(p.t, p.User(u.Subject, u.Username, u.Roles...).With(testkit.Claims{
		"sid": f.sid, "scope": f.scope, "exp": time.Now().Add(ttl).Unix(),
	}))
	refresh := uuid.NewString() + "." + uuid.NewString()
	sum := sha256.Sum256([]byte(access))
	idc := testkit.Claims{
		"iss": p.URL, "sub": u.Subject, "aud": p.ClientID, "azp": p.ClientID, "typ": "ID",
		"exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix(), "nonce": f.nonce, "sid": f.sid,
		"at_hash":            base64.RawURLEncoding.EncodeToString(sum[:16]),
		"preferred_username": u.Username, "name": u.Name, "email": u.Email,
	}
	if p.TamperID != nil {
		p.TamperID(idc)
	}
	id := p.Token(p.t, idc)
	if p.ReserializeID != nil {
		id = p.ReserializeID(id)
	}
	f.current = refresh
	p.families[refresh] = f
	p.issued = append(p.issued, access, refresh)
	p.idTokens = append(p.idTokens, id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
		"refresh_token": refresh, "id_token": id, "scope": f.scope,
	})
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
