// Package auth is the webapp's OpenID Connect client for Keycloak: the authorization code
// flow with PKCE (S256), state and nonce; the ID token check; refreshing tokens; the
// RP-initiated logout form; and the verification of back-channel logout tokens. It speaks
// the protocol only; the HTTP handlers that use it live in package web.
//
// golang.org/x/oauth2 runs the code exchange and the refresh, github.com/coreos/go-oidc
// discovers the realm and verifies ID and logout tokens, and platform/authn verifies the
// access token, which is where Keycloak puts the realm roles and granted scopes.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"example.com/shop/platform/authn"
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
	ClientSecret string
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
	jwks       string // this server: discovery URL
}

// New validates cfg and returns a Client; it makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.PublicURL == "" || cfg.AccessTokens == nil {
		return nil, errors.New("auth: issuer, client id, public URL and access-token verifier are required")
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
	}
	if err := p.Claims(&doc); err != nil || doc.Authorize == "" || doc.Token == "" || doc.JWKS == "" {
		return nil, fmt.Errorf("%w: discovery at %s is incomplete", ErrUnavailable, from)
	}
	// The document decides where the browser logs in and where the client secret and codes
	// are sent: one describing another issuer (a wrong or hijacked internal URL) is refused.
	if doc.Issuer != c.cfg.Issuer {
		return nil, fmt.Errorf("%w: discovery at %s describes issuer %q, want %q", ErrUnavailable, from, doc.Issuer, c.cfg.Issuer)
	}
	c.ep = &endpoints{
		authorize:  c.rebase(doc.Authorize, from, c.cfg.Issuer),
		endSession: c.rebase(doc.EndSession, from, c.cfg.Issuer),
		token:      c.rebase(doc.Token, c.cfg.Issuer, from),
		jwks:       c.rebase(doc.JWKS, c.cfg.Issuer, from),
	}
	return c.ep, nil
}

// reachable asks Keycloak's discovery document (over the internal URL when there is one),
// with a short timeout.
func (c *Client) reachable(ctx context.Context) error {
	from := c.cfg.Issuer
	if c.cfg.DiscoveryURL != "" {
		from = c.cfg.DiscoveryURL
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, from+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: discovery answered %s", ErrUnavailable, resp.Status)
	}
	return nil
}

// rebase moves endpoint from base oldBase to newBase; others stay as they are.
func (c *Client) rebase(endpoint, oldBase, newBase string) string {
	if oldBase != newBase && strings.HasPrefix(endpoint, oldBase+"/") {
		return newBase + strings.TrimPrefix(endpoint, oldBase)
	}
	return endpoint
}

func (c *Client) oauth(ep *endpoints, stepUp bool) *oauth2.Config {
	scopes := baseScopes
	if stepUp {
		scopes = append(scopes[:len(scopes):len(scopes)], ScopeAdminRead)
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  c.redirect,
		Scopes:       scopes,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.authorize, TokenURL: ep.token, AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// NewLogin starts a login: fresh random state, nonce and PKCE verifier, to be kept in the
// session until the callback.
func NewLogin(next string, stepUp bool, now time.Time) session.PendingLogin {
	return session.PendingLogin{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     SafeReturnPath(next),
		StepUp:   stepUp,
		Started:  now,
	}
}

// AuthCodeURL is Keycloak's authorization URL for l: the browser goes there to log in.
// Only the S256 challenge of the verifier leaves the server.
func (c *Client) AuthCodeURL(ctx context.Context, l session.PendingLogin) (string, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return "", err
	}
	// Endpoints are cached, so Keycloak may be down by now. Sending the browser there would
	// end on the browser's own "site can't be reached" page; a quick look first lets the
	// shop show its own "try again" page instead.
	if err := c.reachable(ctx); err != nil {
		return "", err
	}
	return c.oauth(ep, l.StepUp).AuthCodeURL(l.State, oauth2.S256ChallengeOption(l.Verifier), oidc.Nonce(l.Nonce)), nil
}

// Exchange redeems the authorization code of login l and returns the verified user and
// tokens.
func (c *Client) Exchange(ctx context.Context, code string, l session.PendingLogin) (*session.User, *session.Tokens, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	tok, err := c.oauth(ep, l.StepUp).Exchange(c.client(ctx), code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return nil, nil, classify(err)
	}
	u, t, err := c.accept(ctx, tok, l.Nonce, nil)
	if err != nil {
		return nil, nil, err
	}
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
		src := c.oauth(ep, false).TokenSource(c.client(ctx), &oauth2.Token{RefreshToken: t.Refresh})
		tok, err := src.Token()
		if err != nil {
			return nil, classify(err)
		}
		nu, nt, err := c.accept(ctx, tok, "", t)
		if err != nil {
			return nil, err
		}
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

func (c *Client) client(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// classify tells a refused grant (log in again) from an outage (try again later).
func classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		return fmt.Errorf("%w: %s", ErrRejected, re.ErrorCode)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
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
// with prev set (a refresh) a response without an ID token keeps the previous one.
func (c *Client) accept(ctx context.Context, tok *oauth2.Token, nonce string, prev *session.Tokens) (*session.User, *session.Tokens, error) {
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" && prev == nil {
		return nil, nil, fmt.Errorf("%w: the token response has no ID token", ErrInvalidToken)
	}
	p, err := c.cfg.AccessTokens.Verify(ctx, tok.AccessToken)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: access token: %v", ErrInvalidToken, err)
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
