// Package authn verifies the bearer access tokens Keycloak issues and turns them into a
// Principal, as Fiber middleware.
//
// Signature, issuer, audience and expiry are checked by go-oidc; this package adds what an
// API needs beyond an OpenID client: discovery through an internal URL (container networks)
// while the public issuer is still required, a JWKS cache with a bounded refetch rate, a
// small clock leeway applied to both `exp` and `nbf`, refusal of ID and refresh tokens
// presented as access tokens, refusal of tokens in the JWS JSON serialization, and refusal
// of requests that are ambiguous about their token (two Authorization headers, a token in
// the URL).
package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Config describes which tokens a Verifier accepts.
type Config struct {
	// Issuer is the exact `iss` tokens must carry: the URL the browser uses for Keycloak,
	// e.g. http://localhost:8180/realms/shop.
	Issuer string
	// DiscoveryURL, when set, is where discovery and keys are fetched from instead of Issuer
	// (e.g. http://keycloak:8080/realms/shop inside a container network). Tokens must still
	// carry Issuer.
	DiscoveryURL string
	// Audience must be one of the token's `aud` values (e.g. shop-api).
	Audience string
	// ExtraAudiences are further audiences accepted instead of Audience, e.g. the service's
	// own name (payment-service) for client-credentials tokens addressed to it. Route
	// policies then tell callers apart: a token valid here but without the route's role is
	// refused with 403, not 401.
	ExtraAudiences []string
	// Algorithms is the signing algorithm allowlist; RS256 (Keycloak's default) when empty.
	Algorithms []string
	// Leeway is the clock skew tolerated on `exp` and `nbf`; 30s when zero.
	Leeway time.Duration
	// MinKeyRefresh bounds JWKS refetches caused by unknown key ids; 10s when zero.
	MinKeyRefresh time.Duration
	// HTTPClient fetches discovery and keys; a client with a 10s timeout when nil.
	HTTPClient *http.Client
}

// Verifier checks access tokens against one issuer and audience. It is safe for
// concurrent use; discovery happens on first use, so services can start before Keycloak.
type Verifier struct {
	cfg      Config
	keys     *KeySet
	verifier *oidc.IDTokenVerifier

	discoverMu sync.Mutex
	jwksURL    string
}

// NewVerifier validates cfg and returns a Verifier. It makes no network call.
func NewVerifier(cfg Config) (*Verifier, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("authn: issuer is required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("authn: audience is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	cfg.DiscoveryURL = strings.TrimSuffix(cfg.DiscoveryURL, "/")
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{string(jose.RS256)}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MinKeyRefresh == 0 {
		cfg.MinKeyRefresh = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	for _, a := range cfg.Algorithms {
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			// Symmetric algorithms would let anyone holding the public key sign tokens.
			return nil, fmt.Errorf("authn: algorithm %q is not allowed for access tokens", a)
		}
	}
	v := &Verifier{cfg: cfg}
	v.keys = NewKeySet(cfg.HTTPClient, v.discoverJWKS, cfg.Algorithms, cfg.MinKeyRefresh)
	v.verifier = oidc.NewVerifier(cfg.Issuer, v.keys, &oidc.Config{
		ClientID: cfg.Audience,
		// With several accepted audiences Verify checks `aud` itself.
		SkipClientIDCheck:    len(cfg.ExtraAudiences) > 0,
		SupportedSigningAlgs: cfg.Algorithms,
		// go-oidc has no leeway on exp; shifting its clock back grants exactly cfg.Leeway.
		Now: func() time.Time { return time.Now().Add(-cfg.Leeway) },
	})
	return v, nil
}

// claims are the Keycloak access-token claims beyond those go-oidc checks.
type claims struct {
	Type              string   `json:"typ"`
	AuthorizedParty   string   `json:"azp"`
	PreferredUsername string   `json:"preferred_username"`
	Scope             string   `json:"scope"`
	SessionID         string   `json:"sid"`
	NotBefore         *float64 `json:"nbf"`
	Confirmation      struct {
		KeyThumbprint string `json:"jkt"`
	} `json:"cnf"`
	RealmAccess struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
}

// Verify checks raw and returns its principal, or an error that says why it was refused.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if err := RequireCompact(raw); err != nil {
		return nil, err
	}
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if len(v.cfg.ExtraAudiences) > 0 && !slices.ContainsFunc(tok.Audience, v.acceptsAudience) {
		return nil, fmt.Errorf("expected audience %q or one of %q, got %q", v.cfg.Audience, v.cfg.ExtraAudiences, tok.Audience)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("reading claims: %w", err)
	}
	// Keycloak marks its tokens: "Bearer" for access tokens ("DPoP" for those bound to a
	// key, which must then name it in cnf.jkt), "ID" and "Refresh" for the others. An ID
	// token can carry an audience a careless API accepts; never let it in.
	switch {
	case c.Type == "Bearer":
	case c.Type == "DPoP" && c.Confirmation.KeyThumbprint != "":
	default:
		return nil, fmt.Errorf("token type %q is not an access token", c.Type)
	}
	// go-oidc tolerates five minutes on nbf; an API wants the same small leeway as on exp.
	if c.NotBefore != nil {
		nbf := time.Unix(int64(*c.NotBefore), 0)
		if time.Now().Add(v.cfg.Leeway).Before(nbf) {
			return nil, errors.New("token is not valid yet")
		}
	}
	if tok.Subject == "" {
		return nil, errors.New("token has no subject")
	}
	return &Principal{
		Subject:   tok.Subject,
		Username:  c.PreferredUsername,
		ClientID:  c.AuthorizedParty,
		Roles:     c.RealmAccess.Roles,
		Scopes:    strings.Fields(c.Scope),
		SessionID: c.SessionID,
		Expiry:    tok.Expiry,
		KeyBound:  c.Confirmation.KeyThumbprint,
	}, nil
}

func (v *Verifier) acceptsAudience(aud string) bool {
	return aud == v.cfg.Audience || slices.Contains(v.cfg.ExtraAudiences, aud)
}

// KeysGeneration changes whenever the issuer's set of signing keys changes; caches of
// verified tokens compare it to drop entries signed under a retired key set.
func (v *Verifier) KeysGeneration() uint64 { return v.keys.Generation() }

// KeyFetches is the number of JWKS fetches made so far (for tests and metrics).
func (v *Verifier) KeyFetches() int64 { return v.keys.Fetches() }

// Ready fetches discovery and keys if that has not happened yet; a readiness probe uses it
// to report whether tokens can be verified at all.
func (v *Verifier) Ready(ctx context.Context) error {
	if v.keys.loaded() {
		return nil
	}
	if err := v.keys.refresh(ctx); err != nil {
		return err
	}
	// refresh skips the fetch when the last attempt was recent; no keys is still not ready.
	if !v.keys.loaded() {
		return errors.New("signing keys not loaded yet")
	}
	return nil
}

// discoverJWKS resolves the JWKS URL once through OpenID discovery (Discover: the document
// must name the configured issuer, and keys come over the route discovery took).
func (v *Verifier) discoverJWKS(ctx context.Context) (string, error) {
	v.discoverMu.Lock()
	defer v.discoverMu.Unlock()
	if v.jwksURL != "" {
		return v.jwksURL, nil
	}
	d, err := Discover(ctx, v.cfg.HTTPClient, v.cfg.Issuer, v.cfg.DiscoveryURL)
	if err != nil {
		return "", err
	}
	if d.JWKSURL == "" {
		return "", errors.New("the discovery document names no jwks_uri")
	}
	v.jwksURL = d.JWKSURL
	return v.jwksURL, nil
}

// Describe is the error_description for a token Verify refused, for middleware that
// writes its own challenge (the gateway's, which takes DPoP tokens too).
func Describe(err error) string { return describe(err) }

// describe turns a verification error into the short text of WWW-Authenticate's
// error_description: enough for a developer, nothing about keys or internals.
func describe(err error) string {
	var exp *oidc.TokenExpiredError
	switch {
	case errors.As(err, &exp):
		return "the access token expired"
	}
	// go-oidc wraps errors with %v, so the rest is told apart by message.
	msg := err.Error()
	switch {
	case errors.Is(err, ErrNotCompact):
		return "the access token is not a compact JWT"
	case strings.Contains(msg, errUnknownKey.Error()):
		return "the access token is signed with an unknown key"
	case strings.Contains(msg, "issued by a different provider"):
		return "the access token was issued by another issuer"
	case strings.Contains(msg, "expected audience"):
		return "the access token is not meant for this API"
	case strings.Contains(msg, "not an access token"):
		return "the token is not an access token"
	case strings.Contains(msg, "not valid yet"), strings.Contains(msg, "before the nbf"):
		return "the access token is not valid yet"
	}
	return "the access token is invalid"
}

// ErrNotCompact refuses a token that is not in the JWS compact serialization.
var ErrNotCompact = errors.New("token is not in the JWS compact serialization")

// RequireCompact returns ErrNotCompact unless raw has the shape of a compact JWS: three
// base64url segments joined by dots (RFC 7515 section 7.1). Access tokens (RFC 9068), ID
// tokens and logout tokens are all compact JWTs. go-oidc parses with jose.ParseSigned,
// which also accepts the JSON serialization, whose unprotected header is not covered by
// the signature; this check runs before go-oidc sees a token, and the KeySet parses
// compact only as well.
func RequireCompact(raw string) error {
	dots := 0
	for i := range len(raw) {
		switch b := raw[i]; {
		case b == '.':
			dots++
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return ErrNotCompact
		}
	}
	if dots != 2 {
		return ErrNotCompact
	}
	return nil
}
