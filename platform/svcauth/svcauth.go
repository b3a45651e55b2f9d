// Package svcauth is the client side of calls between services with no user behind them:
// the calling service proves who it is twice, with its own OAuth 2.0 client-credentials
// token from Keycloak (golang.org/x/oauth2/clientcredentials) and with its certificate on a
// mutual-TLS channel (platform/mtls).
//
// The token is fetched once and reused until shortly before it expires, so a busy service
// asks Keycloak for a token every few minutes, not on every call.
package svcauth

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"example.com/shop/platform/mtls"
)

// Config describes the calling service's credentials.
type Config struct {
	// TokenURL is Keycloak's token endpoint, reached over the internal network.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Scopes requested with the token, if any.
	Scopes []string
	// EarlyRefresh renews the token this long before it expires, so a call never leaves
	// with a token that dies on the way; 30s when zero.
	EarlyRefresh time.Duration
	// Timeout bounds each call made with the client; 5s when zero.
	Timeout time.Duration
}

// TokenSource returns the cached, self-renewing client-credentials token source. ctx carries
// the HTTP client used to reach Keycloak (oauth2.HTTPClient), if not the default.
func TokenSource(ctx context.Context, cfg Config) oauth2.TokenSource {
	cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		TokenURL: cfg.TokenURL, Scopes: cfg.Scopes, AuthStyle: oauth2.AuthStyleInHeader}
	early := cfg.EarlyRefresh
	if early == 0 {
		early = 30 * time.Second
	}
	return oauth2.ReuseTokenSourceWithExpiry(nil, cc.TokenSource(ctx), early)
}

// NewClient returns an HTTP client that presents id's certificate, trusts only the internal
// CA, and sends the token from ts as a bearer token on every request.
func NewClient(id *mtls.Identity, ts oauth2.TokenSource, timeout time.Duration) *http.Client {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	base := &http.Transport{
		TLSClientConfig:     id.ClientConfig(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: &oauth2.Transport{Source: ts, Base: base}}
}
