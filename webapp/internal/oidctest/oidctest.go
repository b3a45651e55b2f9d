// Package oidctest extends platform/testkit's fake realm with what a web login needs, held
// to the realm's FAPI 2.0 client policy: a PAR endpoint (the only way to start a login),
// the user's trip through the authorization endpoint (answering with `iss`), a token
// endpoint for the authorization code (with PKCE) and refresh grants (with Keycloak's
// refresh-token rotation and reuse detection), private_key_jwt client authentication
// against the webapp's JWKS, DPoP-bound tokens, and logout tokens. Tests drive it; it is
// not used by the webapp itself.
package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"example.com/shop/platform/dpop"
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
	t           testing.TB
	ClientID    string
	RedirectURL string
	// ClientKeys returns the client's public keys, as the realm fetches them from the
	// webapp's JWKS (`use.jwks.url`); set it before the first PAR or token request.
	ClientKeys func() jose.JSONWebKeySet

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
	pushed     map[string]url.Values // by request_uri
	assertions map[string]bool       // client assertion ids seen
	proofs     *dpop.Verifier
	nonce      string
	refused    []string           // why client requests were refused
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
	jkt       string // dpop_jkt of the pushed request
	used      bool
	family    *family
}

type family struct {
	user    User
	scope   string
	sid     string
	nonce   string
	jkt     string // the DPoP key the family's tokens are bound to
	current string
	revoked bool
}

// New starts the fake realm for the client.
func New(t testing.TB, clientID, redirectURL string) *Provider {
	p := &Provider{
		Issuer: testkit.NewIssuer(t), t: t, ClientID: clientID, RedirectURL: redirectURL,
		AccessTTL: 5 * time.Minute, codes: map[string]*grant{}, families: map[string]*family{}, retired: map[string]*family{},
		pushed: map[string]url.Values{}, assertions: map[string]bool{},
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Replay: dpop.NewMemory(0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	p.proofs = proofs
	p.Handle(t, "POST /realms/shop/protocol/openid-connect/token", p.token)
	p.Handle(t, "POST /realms/shop/protocol/openid-connect/ext/par/request", p.par)
	return p
}

// par is the pushed authorization request endpoint (RFC 9126): the client authenticates,
// and the request is checked as the realm would (client, exact redirect URI, code flow,
// PKCE S256, state and nonce present) before it gets a request_uri good for a minute.
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Down {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if err := p.authenticate(r); err != nil {
		p.refused = append(p.refused, "par: "+err.Error())
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	q := r.PostForm
	switch {
	case q.Get("redirect_uri") != p.RedirectURL:
		p.t.Errorf("redirect_uri %q is not the registered %q", q.Get("redirect_uri"), p.RedirectURL)
	case q.Get("response_type") != "code":
		p.t.Errorf("response_type %q", q.Get("response_type"))
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43:
		p.t.Errorf("PKCE S256 missing: %v", q)
	case len(q.Get("state")) < 16 || len(q.Get("nonce")) < 16:
		p.t.Errorf("state or nonce missing or short: %v", q)
	case len(q.Get("dpop_jkt")) < 43:
		p.t.Errorf("dpop_jkt missing: %v", q)
	case q.Get("request_uri") != "" || q.Get("request") != "":
		p.t.Errorf("a pushed request must not nest another: %v", q)
	default:
		uri := "urn:ietf:params:oauth:request_uri:" + uuid.NewString()
		p.pushed[uri] = q
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"request_uri": uri, "expires_in": 60})
		return
	}
	oauthError(w, http.StatusBadRequest, "invalid_request")
}

// authenticate checks the client assertion of a request as Keycloak does for
// private_key_jwt: the JWT type and client, signed by a key of the client's JWKS, for
// this realm (aud the issuer, alone, as FAPI 2.0 has it), unexpired, and never seen
// before. A client secret is no credential here. Callers hold p.mu.
func (p *Provider) authenticate(r *http.Request) error {
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
		return errors.New("client secret sent; the client authenticates with private_key_jwt")
	}
	if r.PostForm.Get("client_id") != p.ClientID || r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("not the client, or no JWT assertion")
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.PS256})
	if err != nil {
		return err
	}
	if p.ClientKeys == nil {
		return errors.New("the client has no registered keys")
	}
	var c jwt.Claims
	verified := false
	for _, k := range p.ClientKeys().Keys {
		if tok.Claims(k.Key, &c) == nil {
			verified = true
			break
		}
	}
	switch {
	case !verified:
		return errors.New("assertion not signed by a key of the client's JWKS")
	case c.Issuer != p.ClientID || c.Subject != p.ClientID:
		return errors.New("assertion iss/sub is not the client")
	case len(c.Audience) != 1 || c.Audience[0] != p.URL:
		return errors.New("assertion audience is not the issuer alone")
	case c.Expiry == nil || c.Expiry.Time().Before(time.Now()) || c.Expiry.Time().After(time.Now().Add(5*time.Minute)):
		return errors.New("assertion expired or too long-lived")
	case c.ID == "" || p.assertions[c.ID]:
		return errors.New("assertion jti missing or used before")
	}
	p.assertions[c.ID] = true
	return nil
}

// Refused lists why client requests (PAR, token) were refused, for tests to check.
func (p *Provider) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refused)
}

// RequireNonce makes the token endpoint demand a DPoP nonce (RFC 9449 section 8): a proof
// without it is answered use_dpop_nonce with the nonce in DPoP-Nonce.
func (p *Provider) RequireNonce(nonce string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nonce = nonce
}

// Authorize plays the user at Keycloak's login page for the authorization URL the webapp
// redirected to, and returns the URL Keycloak sends the browser back to (with `iss`, RFC
// 9207). As the realm's FAPI policy requires, the URL must carry only the client id and the
// request_uri of a pushed request, each good once; like the realm's admin:read guard, it
// refuses that scope to a user without ADMIN.
func (p *Provider) Authorize(authURL string, u User) string {
	p.t.Helper()
	au, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, p.URL+"/protocol/openid-connect/auth?") {
		p.t.Fatalf("not an authorization URL of the realm: %q", authURL)
	}
	direct := au.Query()
	if len(direct) != 2 || direct.Get("client_id") != p.ClientID || direct.Get("request_uri") == "" {
		p.t.Fatalf("an authorization request without PAR, or with more than client_id and request_uri: %v", direct)
	}
	p.mu.Lock()
	q, ok := p.pushed[direct.Get("request_uri")]
	delete(p.pushed, direct.Get("request_uri"))
	if ok {
		p.authorized = append(p.authorized, q)
	}
	p.mu.Unlock()
	if !ok {
		p.t.Fatalf("request_uri %q was not pushed, or was used before", direct.Get("request_uri"))
	}
	scope := q.Get("scope")
	back := url.Values{"state": {q.Get("state")}, "iss": {p.URL}}
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
	p.codes[code] = &grant{user: u, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), scope: scope, sid: sid, jkt: q.Get("dpop_jkt")}
	p.mu.Unlock()
	back.Set("code", code)
	return p.RedirectURL + "?" + back.Encode()
}

// AuthorizationRequests returns the parameters of every authorization request seen (as
// pushed).
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

// SetDown makes the PAR and token endpoints, discovery and keys fail (or work again).
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
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if err := p.authenticate(r); err != nil {
		p.refused = append(p.refused, "token: "+err.Error())
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	proofs := r.Header.Values(dpop.Header)
	if len(proofs) != 1 {
		p.refused = append(p.refused, "token: no DPoP proof")
		oauthError(w, http.StatusBadRequest, dpop.CodeInvalidProof)
		return
	}
	proof, err := p.proofs.Verify(r.Context(), dpop.Request{Proof: proofs[0], Method: r.Method, URL: "http://" + r.Host + r.URL.Path, Nonce: p.nonce})
	var de *dpop.Error
	if errors.As(err, &de) && de.Code == dpop.CodeUseNonce {
		w.Header().Set(dpop.NonceHeader, p.nonce)
		oauthError(w, http.StatusBadRequest, dpop.CodeUseNonce)
		return
	}
	if err != nil {
		p.refused = append(p.refused, "token: "+err.Error())
		oauthError(w, http.StatusBadRequest, dpop.CodeInvalidProof)
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
		case proof.Thumbprint != g.jkt:
			// The code is bound to the key pushed as dpop_jkt: a thief's key cannot redeem it.
			p.refused = append(p.refused, "token: proof key is not the code's dpop_jkt")
			oauthError(w, http.StatusBadRequest, dpop.CodeInvalidProof)
			return
		}
		g.used = true
		g.family = &family{user: g.user, scope: g.scope, sid: g.sid, nonce: g.nonce, jkt: g.jkt}
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
		if proof.Thumbprint != f.jkt {
			p.refused = append(p.refused, "token: refresh proof by another key")
			oauthError(w, http.StatusBadRequest, dpop.CodeInvalidProof)
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
		"sid": f.sid, "scope": f.scope, "exp": time.Now().Add(ttl).Unix(), "cnf": map[string]any{"jkt": f.jkt}, "typ": "DPoP",
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
		"access_token": access, "token_type": "DPoP", "expires_in": int(ttl.Seconds()),
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
