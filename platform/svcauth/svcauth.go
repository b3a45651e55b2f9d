// Package svcauth secures calls between services with no user behind them, on both sides.
// The calling service proves who it is twice: with its own OAuth 2.0 client-credentials
// token from Keycloak (golang.org/x/oauth2/clientcredentials) and with its certificate on
// a mutual-TLS channel (platform/mtls).
//
// The client side (TokenSource, NewClient) fetches the token once and reuses it until
// shortly before it expires, so a busy service asks Keycloak for a token every few minutes,
// not on every call; and it talks only to the service it means to call, checked by that
// service's certificate before the token leaves.
//
// The server side (Guard, Mount) admits a call only when the certificate is one the route
// allows, the token is valid and a service account's, and both belong to the same service
// (ClientIDOf).
package svcauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/telemetry"
)

// Config describes the calling service's credentials and where Keycloak is.
type Config struct {
	// TokenURL is Keycloak's token endpoint, reached over the internal network. When empty
	// it is found by discovery (DiscoverTokenURL from Issuer and DiscoveryURL) on the first
	// token request rather than at start-up, so the service can start before Keycloak.
	TokenURL string
	// Issuer is the realm's public URL, the `iss` of its tokens; DiscoveryURL, when set, is
	// where the realm is reached inside the network. Used only when TokenURL is empty.
	Issuer       string
	DiscoveryURL string

	ClientID     string
	ClientSecret string
	// Scopes requested with the token, if any.
	Scopes []string
	// EarlyRefresh renews the token this long before it expires, so a call never leaves
	// with a token that dies on the way; 30s when zero.
	EarlyRefresh time.Duration
	// HTTPClient reaches Keycloak; a client with a 10s timeout when nil. oauth2 would
	// otherwise use http.DefaultClient, which never gives up on a Keycloak that does not
	// answer, and every call waiting for a token would hang with it.
	HTTPClient *http.Client
}

// TokenSource returns the service's cached, self-renewing client-credentials token
// source. ctx is kept for every token request; it should live as long as the service.
func TokenSource(ctx context.Context, cfg Config) oauth2.TokenSource {
	if cfg.EarlyRefresh == 0 {
		cfg.EarlyRefresh = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = telemetry.Client(&http.Client{Timeout: 10 * time.Second})
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, cfg.HTTPClient)
	if cfg.TokenURL != "" {
		return cached(ctx, cfg)
	}
	return &discovered{ctx: ctx, cfg: cfg}
}

// cached is the token source of cfg, whose TokenURL is known.
func cached(ctx context.Context, cfg Config) oauth2.TokenSource {
	cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		TokenURL: cfg.TokenURL, Scopes: cfg.Scopes, AuthStyle: oauth2.AuthStyleInHeader}
	return oauth2.ReuseTokenSourceWithExpiry(nil, cc.TokenSource(ctx), cfg.EarlyRefresh)
}

// discovered finds the token endpoint on the first token request, then hands every
// request to the cached source. A failed discovery is retried on the next request.
type discovered struct {
	ctx context.Context
	cfg Config

	mu     sync.Mutex
	source oauth2.TokenSource
}

// Token implements oauth2.TokenSource.
func (d *discovered) Token() (*oauth2.Token, error) {
	source, err := d.resolve()
	if err != nil {
		return nil, err
	}
	return source.Token()
}

func (d *discovered) resolve() (oauth2.TokenSource, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.source != nil {
		return d.source, nil
	}
	url, err := DiscoverTokenURL(d.ctx, d.cfg.HTTPClient, d.cfg.Issuer, d.cfg.DiscoveryURL)
	if err != nil {
		return nil, err
	}
	cfg := d.cfg
	cfg.TokenURL = url
	d.source = cached(d.ctx, cfg)
	return d.source, nil
}

// DiscoverTokenURL returns the realm's token endpoint from its discovery document, fetched
// from discoveryURL when set (inside a container network) and from issuer otherwise, with
// client (http.DefaultClient when nil). The document must name issuer, the `iss` of the
// realm's tokens: the client secret goes to the endpoint it names. An endpoint under the
// public issuer is moved onto discoveryURL, the way this service reaches Keycloak (see
// authn.Discover).
func DiscoverTokenURL(ctx context.Context, client *http.Client, issuer, discoveryURL string) (string, error) {
	if issuer == "" {
		return "", errors.New("finding the token endpoint: no issuer to discover it from")
	}
	d, err := authn.Discover(ctx, client, issuer, discoveryURL)
	if err != nil {
		return "", fmt.Errorf("finding the token endpoint: %w", err)
	}
	if d.TokenURL == "" {
		return "", errors.New("finding the token endpoint: the discovery document names none")
	}
	return d.TokenURL, nil
}

// NewClient returns an HTTP client for calls to the service whose SPIFFE id is peerID
// (mtls.ID): it presents id's certificate, trusts only the internal CA, refuses a server
// whose certificate is not peerID's (mtls.Identity.ClientConfigFor) and sends the token
// from ts as a bearer token on every request. Each call is bounded by timeout, 5s when
// zero.
//
// The server's identity is checked in the handshake, before the token is sent: a service
// that answers in the peer's place, with a valid certificate of its own, never sees it.
func NewClient(id *mtls.Identity, peerID string, ts oauth2.TokenSource, timeout time.Duration) *http.Client {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	base := &http.Transport{
		TLSClientConfig:     id.ClientConfigFor(peerID),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: telemetry.Transport(&oauth2.Transport{Source: ts, Base: base})}
}
