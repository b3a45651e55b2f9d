package svcauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"example.com/shop/platform/telemetry"
)

// Token types and the grant of OAuth 2.0 Token Exchange (RFC 8693).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// ErrExchangeRefused is returned when Keycloak refuses to exchange a token: the user's
// session has ended, or the token was not issued for this service to exchange. The caller
// should answer as it would to an expired token (401), not as to an outage.
var ErrExchangeRefused = errors.New("the identity provider refused to exchange the caller's token")

// Exchanger trades the access token of the user a service acts for into a token for one
// other service (OAuth 2.0 Token Exchange, RFC 8693, as Keycloak's standard token exchange
// implements it): same user, same session and expiry, roles cut to the exchanging client's
// role scope, and an audience naming the target service alone. A service calling another
// for a user sends that token instead of relaying the user's own, so what the callee holds
// is good for the callee only: replayed at the gateway or at any other service, it is
// refused for its audience.
//
// Keycloak exchanges a token only for a client named in the token's audience, only for a
// client with standard token exchange enabled, and only into an audience that client's
// own tokens may carry (keycloak/realm/shop-realm.json sets all three).
//
// Exchanged tokens are cached until EarlyRefresh before they expire, keyed by the SHA-256
// of the token they were exchanged for, so a retried call does not go back to Keycloak.
type Exchanger struct {
	cfg      Config
	audience string
	cache    *lru.Cache[[sha256.Size]byte, *oauth2.Token]
	now      func() time.Time

	mu       sync.Mutex
	tokenURL string
}

// exchangeCacheSize bounds the cache: a few MiB, more users than check out within a token's
// five minutes on one replica.
const exchangeCacheSize = 10_000

// NewExchanger returns an Exchanger for cfg's client (the exchanging service) into tokens
// for audience (the client id of the service to call). cfg is read as for TokenSource: the
// token endpoint is discovered on first use when TokenURL is empty.
func NewExchanger(cfg Config, audience string) *Exchanger {
	if cfg.EarlyRefresh == 0 {
		cfg.EarlyRefresh = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = telemetry.Client(&http.Client{Timeout: 10 * time.Second})
	}
	cache, _ := lru.New[[sha256.Size]byte, *oauth2.Token](exchangeCacheSize) // errors only for size <= 0
	return &Exchanger{cfg: cfg, audience: audience, cache: cache, tokenURL: cfg.TokenURL, now: time.Now}
}

// Exchange returns an access token for the Exchanger's audience on behalf of the user of
// subjectToken (the bearer token as received, without "Bearer "). It returns
// ErrExchangeRefused (wrapped) when Keycloak refuses, and another error when Keycloak
// cannot be asked.
//
// A sender-constrained subject token (DPoP-bound, `cnf.jkt`: the web shop's) is returned
// as it is: Keycloak refuses to exchange a bound token for any client but the one it was
// issued to, since no other can prove the key. Such a token already names the services in
// its audience, arrived through the gateway, which checked its proof, and is still bound,
// so a copy taken from this hop is refused at the gateway (docs/architecture.md, "Token
// binding"). The caller has verified it; it is only read here.
func (e *Exchanger) Exchange(ctx context.Context, subjectToken string) (string, error) {
	if senderConstrained(subjectToken) {
		return subjectToken, nil
	}
	key := sha256.Sum256([]byte(subjectToken))
	if t, ok := e.cache.Get(key); ok && e.now().Add(e.cfg.EarlyRefresh).Before(t.Expiry) {
		return t.AccessToken, nil
	}
	tokenURL, err := e.endpoint(ctx)
	if err != nil {
		return "", err
	}
	// clientcredentials carries the client authentication and the token endpoint's error
	// format; RFC 8693 is the same request with another grant_type, which EndpointParams
	// is allowed to set.
	cc := clientcredentials.Config{
		ClientID: e.cfg.ClientID, ClientSecret: e.cfg.ClientSecret, TokenURL: tokenURL,
		AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{
			"grant_type":           {grantTokenExchange},
			"subject_token":        {subjectToken},
			"subject_token_type":   {tokenTypeAccess},
			"requested_token_type": {tokenTypeAccess},
			"audience":             {e.audience},
		},
	}
	t, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, e.cfg.HTTPClient))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			// Keycloak's error code says why (invalid_token, access_denied, ...); its
			// description never carries the token.
			return "", fmt.Errorf("%w: %s %s", ErrExchangeRefused, re.ErrorCode, re.ErrorDescription)
		}
		return "", fmt.Errorf("exchanging the caller's token for %s: %w", e.audience, err)
	}
	if t.Expiry.IsZero() {
		// Without expires_in nothing says how long it may be reused; use it once.
		return t.AccessToken, nil
	}
	e.cache.Add(key, t)
	return t.AccessToken, nil
}

func (e *Exchanger) endpoint(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tokenURL != "" {
		return e.tokenURL, nil
	}
	u, err := DiscoverTokenURL(ctx, e.cfg.HTTPClient, e.cfg.Issuer, e.cfg.DiscoveryURL)
	if err != nil {
		return "", err
	}
	e.tokenURL = u
	return u, nil
}

// senderConstrained reports whether a JWT's payload names a key it is bound to (`cnf.jkt`,
// RFC 9449 section 6). It does not verify the token: its callers already have.
func senderConstrained(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Cnf.JKT != ""
}
