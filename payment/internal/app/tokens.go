package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"example.com/shop/platform/svcauth"
)

// serviceTokens is the payment service's own client-credentials token source. With no
// token URL configured it finds Keycloak's token endpoint by OpenID discovery on first use
// rather than at start-up, so the service can start before Keycloak. Tokens are cached and
// renewed shortly before they expire (svcauth).
func serviceTokens(ctx context.Context, cfg Config) oauth2.TokenSource {
	// Keycloak is reached with a client of its own: oauth2 would otherwise use
	// http.DefaultClient, which never gives up on a Keycloak that does not answer.
	keycloak := &http.Client{Timeout: 10 * time.Second}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, keycloak)
	sc := svcauth.Config{TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret}
	if sc.TokenURL != "" {
		return svcauth.TokenSource(ctx, sc)
	}
	return &discoveredTokens{ctx: ctx, cfg: sc, issuer: cfg.Issuer, discoveryURL: cfg.DiscoveryURL}
}

// discoveredTokens resolves the token endpoint once, then hands every call to the cached
// svcauth token source. A failed discovery is retried on the next call.
type discoveredTokens struct {
	ctx                  context.Context
	cfg                  svcauth.Config
	issuer, discoveryURL string

	mu     sync.Mutex
	source oauth2.TokenSource
}

// Token implements oauth2.TokenSource.
func (d *discoveredTokens) Token() (*oauth2.Token, error) {
	d.mu.Lock()
	if d.source == nil {
		url, err := tokenEndpoint(d.ctx, d.issuer, d.discoveryURL)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		cfg := d.cfg
		cfg.TokenURL = url
		d.source = svcauth.TokenSource(d.ctx, cfg)
	}
	source := d.source
	d.mu.Unlock()
	return source.Token()
}

// tokenEndpoint reads the token endpoint from the realm's discovery document, fetched from
// discoveryURL when set (inside a container network), from the issuer otherwise. The
// document must name the issuer tokens carry: the client secret goes to the endpoint it
// names. Keycloak names its public URLs in a document fetched internally (unless its
// backchannel is dynamic), so an endpoint under the public issuer is moved to the internal
// URL discovery came from.
func tokenEndpoint(ctx context.Context, issuer, discoveryURL string) (string, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	from := strings.TrimSuffix(discoveryURL, "/")
	if from == "" {
		from = issuer
	}
	// go-oidc compares the document's issuer with the URL it was fetched from unless told
	// the issuer to expect; told, it compares nothing, so the check is made below.
	p, err := oidc.NewProvider(oidc.InsecureIssuerURLContext(ctx, issuer), from)
	if err != nil {
		return "", fmt.Errorf("finding the token endpoint: discovery at %s: %w", from, err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := p.Claims(&doc); err != nil || doc.Issuer != issuer {
		return "", fmt.Errorf("finding the token endpoint: discovery at %s describes issuer %q, want %q", from, doc.Issuer, issuer)
	}
	url := p.Endpoint().TokenURL
	if url == "" {
		return "", fmt.Errorf("finding the token endpoint: discovery at %s names none", from)
	}
	if from != issuer && strings.HasPrefix(url, issuer+"/") {
		url = from + strings.TrimPrefix(url, issuer)
	}
	return url, nil
}
