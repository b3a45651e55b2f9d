// Package auth is the webapp's OpenID Connect client for Keycloak, a FAPI 2.0 client: the
// authorization code flow with PKCE (S256), state and nonce, pushed to the realm first
// (PAR) and answered with `iss` checked; private_key_jwt client authentication; access
// tokens bound to a DPoP key per login; the ID token check; refreshing tokens; the
// RP-initiated logout form; and the verification of back-channel logout tokens. It speaks
// the protocol only; the HTTP handlers that use it live in package web.
//
// github.com/coreos/go-oidc discovers the realm and verifies ID and logout tokens,
// platform/authn verifies the access token (where Keycloak puts the realm roles and
// granted scopes), and platform/dpop signs the proofs. PAR, client assertions and the
// token requests are written here (fapi.go): golang.org/x/oauth2 has none of them.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/dpop"
	"example.com/shop/webapp/internal/session"
)

// ScopeAdminRead is the optional scope an admin's token needs to list all orders.
const ScopeAdminRead = "admin:read"

// Paths of the webapp that Keycloak knows (the realm's redirect and post-logout URIs).
const (
	CallbackPath   = "/auth/callback"
	PostLogoutPath = "/"
)

var baseScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// Errors a caller tells apart.
var (
	// ErrUnavailable: Keycloak could not be reached or failed; trying again later may work.
	ErrUnavailable = errors.New("the login service is unavailable")
	// ErrRejected: Keycloak refused the code or refresh token (expired, used, revoked).
	ErrRejected = errors.New("the login service refused the grant")
	// ErrInvalidToken: a token failed verification.
	ErrInvalidToken = errors.New("invalid token")
)

// Config configures a Client.
type Config struct {
	// Issuer is the realm URL the browser uses, exactly as tokens name it.
	Issuer string
	// DiscoveryURL, when set, is where this server reaches the realm (e.g. inside a
	// container network); discovery, token and key requests go there.
	DiscoveryURL string
	ClientID     string
	// Keys authenticate the client to the realm (private_key_jwt); their public halves
	// are served at JWKSPath for the realm to fetch.
	Keys *ClientKeys
	// PublicURL is the webapp's own URL as the browser sees it; the redirect and
	// post-logout URIs registered in the realm are built from it.
	PublicURL string
	// AccessTokens verifies access tokens (audience shop-api) to read roles and scopes.
	AccessTokens *authn.Verifier
	// HTTPClient makes every back-channel call; a client with a 10s timeout when nil.
	HTTPClient *http.Client
	// Leeway is the clock skew tolerated on token times; 30s when zero.
	Leeway time.Duration
}

// Client is the OIDC client. Discovery happens on first use, so the webapp can start
// before Keycloak; a failed discovery is retried on the next use.
type Client struct {
	cfg      Config
	keys     *authn.KeySet
	redirect string
	logoutTo string

	mu sync.Mutex
	ep *endpoints

	refreshes singleflight.Group
}

// endpoints are the realm's endpoints, split by who calls them.
type endpoints struct {
	authorize  string // the browser: public issuer URL
	endSession string // the browser: public issuer URL
	token      string // this server: discovery URL
	par        string // this server: discovery URL
	jwks       string // this server: discovery URL
	// issParameter: the realm names itself in authorization responses (RFC 9207).
	issParameter bool
}

// New validates cfg and returns a Client; it makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.PublicURL == "" || cfg.AccessTokens == nil || cfg.Keys == nil {
		return nil, errors.New("auth: issuer, client id, client keys, public URL and access-token verifier are required")
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	cfg.DiscoveryURL = strings.TrimSuffix(cfg.DiscoveryURL, "/")
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	c := &Client{cfg: cfg, redirect: cfg.PublicURL + CallbackPath, logoutTo: cfg.PublicURL + PostLogoutPath}
	// The logout endpoint accepts tokens from anyone: the key set's refetch limit keeps a
	// stream of forged logout tokens from becoming a stream of requests to Keycloak.
	c.keys = authn.NewKeySet(cfg.HTTPClient, func(ctx context.Context) (string, error) {
		ep, err := c.endpoints(ctx)
		if err != nil {
			return "", err
		}
		return ep.jwks, nil
	}, []string{"RS256"}, 10*time.Second)
	return c, nil
}

// endpoints discovers the realm once. Keycloak names endpoints after the URL it was
// reached at (or its configured hostname), so each endpoint is rebased onto the base its
// caller can reach: the browser's onto the public issuer, this server's onto the internal
// discovery URL.
func (c *Client) endpoints(ctx context.Context) (*endpoints, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ep != nil {
		return c.ep, nil
	}
	ctx = oidc.ClientContext(ctx, c.cfg.HTTPClient)
	from := c.cfg.Issuer
	if c.cfg.DiscoveryURL != "" && c.cfg.DiscoveryURL != c.cfg.Issuer {
		// The document fetched internally names the public issuer; go-oidc, told so with
		// InsecureIssuerURLContext, then compares nothing, so the issuer is checked below.
		ctx = oidc.InsecureIssuerURLContext(ctx, c.cfg.Issuer)
		from = c.cfg.DiscoveryURL
	}
	p, err := oidc.NewProvider(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, from, err)
	}
	var doc struct {
		Issuer     string `json:"issuer"`
		Authorize  string `json:"authorization_endpoint"`
		Token      string `json:"token_endpoint"`
		EndSession string `json:"end_session_endpoint"`
		JWKS       string `json:"jwks_uri"`
		PAR        string `json:"pushed_authorization_request_endpoint"`
		ISSParam   bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&doc); err != nil || doc.Authorize == "" || doc.Token == "" || doc.JWKS == "" || doc.PAR == "" {
		return nil, fmt.Errorf("%w: discovery at %s is incomplete", ErrUnavailable, from)
	}
	// The document decides where the browser logs in and where client assertions and codes
	// are sent: one describing another issuer (a wrong or hijacked internal URL) is refused.
	if doc.Issuer != c.cfg.Issuer {
		return nil, fmt.Errorf("%w: discovery at %s describes issuer %q, want %q", ErrUnavailable, from, doc.Issuer, c.cfg.Issuer)
	}
	c.ep = &endpoints{
		authorize:    c.rebase(doc.Authorize, from, c.cfg.Issuer),
		endSession:   c.rebase(doc.EndSession, from, c.cfg.Issuer),
		token:        c.rebase(doc.Token, c.cfg.Issuer, from),
		par:          c.rebase(doc.PAR, c.cfg.Issuer, from),
		jwks:         c.rebase(doc.JWKS, c.cfg.Issuer, from),
		issParameter: doc.ISSParam,
	}
	return c.ep, nil
}

// rebase moves endpoint from base oldBase to newBase; others stay as they are.
func (c *Client) rebase(endpoint, oldBase, newBase string) string {
	if oldBase != newBase && strings.HasPrefix(endpoint, oldBase+"/") {
		return newBase + strings.TrimPrefix(endpoint, oldBase)
	}
	return endpoint
}

func (c *Client) scopes(stepUp bool) []string {
	if stepUp {
		return append(baseScopes[:len(baseScopes):len(baseScopes)], ScopeAdminRead)
	}
	return baseScopes
}

// NewLogin starts a login: fresh random state, nonce, PKCE verifier and DPoP key, to be
// kept in the session until the callback.
func NewLogin(next string, stepUp bool, now time.Time) (session.PendingLogin, error) {
	key, err := dpop.NewKey()
	if err != nil {
		return session.PendingLogin{}, err
	}
	der, err := key.Marshal()
	if err != nil {
		return session.PendingLogin{}, err
	}
	return session.PendingLogin{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     SafeReturnPath(next),
		StepUp:   stepUp,
		Started:  now,
		DPoPKey:  der,
	}, nil
}

// AuthCodeURL pushes the authorization request of l to the realm (PAR) and returns the
// authorization URL the browser goes to: the client id and the request_uri, nothing else.
// Only the S256 challenge of the verifier and the DPoP key's thumbprint leave the server.
// The push also shows Keycloak is up, so a shopper is never sent to a dead login page.
func (c *Client) AuthCodeURL(ctx context.Context, l session.PendingLogin) (string, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return "", err
	}
	key, err := dpop.ParseKey(l.DPoPKey)
	if err != nil {
		return "", err
	}
	requestURI, err := c.pushAuthorization(ctx, ep, l, key)
	if err != nil {
		return "", err
	}
	return ep.authorize + "?" + url.Values{"client_id": {c.cfg.ClientID}, "request_uri": {requestURI}}.Encode(), nil
}

// Exchange redeems the authorization code of login l, with a proof of the login's DPoP
// key, and returns the verified user and tokens bound to that key.
func (c *Client) Exchange(ctx context.Context, code string, l session.PendingLogin) (*session.User, *session.Tokens, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	key, err := dpop.ParseKey(l.DPoPKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the login has no usable DPoP key: %v", ErrRejected, err)
	}
	tok, err := c.token(ctx, ep, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}, "code_verifier": {l.Verifier},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	u, t, err := c.accept(ctx, tok, l.Nonce, nil, key)
	if err != nil {
		return nil, nil, err
	}
	t.DPoPKey = l.DPoPKey
	u.LoginAt = time.Now()
	return u, t, nil
}

// Refresh trades the refresh token of u for new tokens. Keycloak rotates refresh tokens
// and treats a second use of one as theft, ending the whole login; so concurrent requests
// of one session holding the same refresh token share one refresh call.
func (c *Client) Refresh(ctx context.Context, u *session.User, t *session.Tokens) (*session.User, *session.Tokens, error) {
	type result struct {
		u *session.User
		t *session.Tokens
	}
	v, err, _ := c.refreshes.Do(t.Refresh, func() (any, error) {
		// One caller giving up must not fail the others waiting on the same call.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		ep, err := c.endpoints(ctx)
		if err != nil {
			return nil, err
		}
		// A session from before token binding has no key: its login must start over.
		key, err := dpop.ParseKey(t.DPoPKey)
		if err != nil {
			return nil, fmt.Errorf("%w: the session has no usable DPoP key", ErrRejected)
		}
		tok, err := c.token(ctx, ep, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.Refresh}}, key)
		if err != nil {
			return nil, err
		}
		nu, nt, err := c.accept(ctx, tok, "", t, key)
		if err != nil {
			return nil, err
		}
		nt.DPoPKey = t.DPoPKey
		if nu.Subject != u.Subject {
			return nil, fmt.Errorf("%w: refreshed tokens name another user", ErrInvalidToken)
		}
		nu.LoginAt = u.LoginAt
		return result{nu, nt}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	r := v.(result)
	return r.u, r.t, nil
}

// idClaims are the ID token claims the webapp uses beyond those go-oidc checks.
type idClaims struct {
	Type              string `json:"typ"`
	AuthorizedParty   string `json:"azp"`
	SessionID         string `json:"sid"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
	Email             string `json:"email"`
}

// accept verifies a token response. With nonce set (a login) the ID token must carry it;
// with prev set (a refresh) a response without an ID token keeps the previous one. The
// access token must be bound to key (`cnf.jkt`): bound to another, it is useless to us.
func (c *Client) accept(ctx context.Context, tok *oauth2.Token, nonce string, prev *session.Tokens, key *dpop.Key) (*session.User, *session.Tokens, error) {
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" && prev == nil {
		return nil, nil, fmt.Errorf("%w: the token response has no ID token", ErrInvalidToken)
	}
	p, err := c.cfg.AccessTokens.Verify(ctx, tok.AccessToken)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: access token: %v", ErrInvalidToken, err)
	}
	if p.KeyBound != key.Thumbprint() {
		return nil, nil, fmt.Errorf("%w: the access token is not bound to this login's DPoP key", ErrInvalidToken)
	}
	u := &session.User{Subject: p.Subject, Username: p.Username, SessionID: p.SessionID, Roles: p.Roles, Scopes: p.Scopes}
	t := &session.Tokens{Access: tok.AccessToken, Refresh: tok.RefreshToken, ID: rawID, Expiry: tok.Expiry}
	if rawID == "" {
		t.ID = prev.ID
		return u, t, nil
	}
	// go-oidc parses the JWS JSON serialization too, whose unprotected header no signature
	// covers; an ID token is a compact JWT, so nothing else reaches it.
	if err := authn.RequireCompact(rawID); err != nil {
		return nil, nil, fmt.Errorf("%w: ID token: %v", ErrInvalidToken, err)
	}
	id, err := c.idVerifier().Verify(ctx, rawID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ID token: %v", ErrInvalidToken, err)
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("%w: ID token nonce does not match the login", ErrInvalidToken)
	}
	if id.AccessTokenHash != "" {
		if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
	}
	var cl idClaims
	if err := id.Claims(&cl); err != nil {
		return nil, nil, fmt.Errorf("%w: ID token claims: %v", ErrInvalidToken, err)
	}
	switch {
	case cl.Type != "" && cl.Type != "ID":
		return nil, nil, fmt.Errorf("%w: token type %q is not an ID token", ErrInvalidToken, cl.Type)
	case cl.AuthorizedParty != "" && cl.AuthorizedParty != c.cfg.ClientID:
		return nil, nil, fmt.Errorf("%w: ID token issued to %q", ErrInvalidToken, cl.AuthorizedParty)
	case id.Subject != p.Subject:
		return nil, nil, fmt.Errorf("%w: ID and access token name different users", ErrInvalidToken)
	}
	u.Name, u.Email = cl.Name, cl.Email
	if cl.PreferredUsername != "" {
		u.Username = cl.PreferredUsername
	}
	if cl.SessionID != "" {
		u.SessionID = cl.SessionID
	}
	return u, t, nil
}

func (c *Client) idVerifier() *oidc.IDTokenVerifier {
	return oidc.NewVerifier(c.cfg.Issuer, c.keys, &oidc.Config{
		ClientID:             c.cfg.ClientID,
		SupportedSigningAlgs: []string{oidc.RS256},
		// go-oidc has no leeway on exp; shifting its clock back grants it.
		Now: func() time.Time { return time.Now().Add(-c.cfg.Leeway) },
	})
}
