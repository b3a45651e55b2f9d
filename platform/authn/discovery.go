package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Discovery is what the shop's servers read from a realm's OpenID discovery document, the
// endpoints already moved onto the URL the document was fetched from (see Discover).
type Discovery struct {
	Issuer   string `json:"issuer"`
	JWKSURL  string `json:"jwks_uri"`
	TokenURL string `json:"token_endpoint"`
}

// Discover fetches the discovery document of issuer from discoveryURL, or from issuer when
// discoveryURL is empty, with client (http.DefaultClient when nil).
//
// The document must name issuer, the public URL tokens carry as `iss`, even when it was
// fetched from an internal URL (http://keycloak:8080/realms/shop in a container network):
// it names the endpoints keys are fetched from and client secrets are sent to, so a
// document of another issuer (another realm, a wrong or hijacked URL) is refused.
// go-oidc's NewProvider cannot make this check for an internal URL: it compares the
// document with the URL it fetched from, and given oidc.InsecureIssuerURLContext it
// compares nothing at all (v3.21 skips the comparison). So the document is read here.
//
// Keycloak names its endpoints under the public issuer in a document fetched internally
// (unless its backchannel is dynamic); a server must reach them the way it reached
// discovery, so endpoints under issuer are moved onto discoveryURL.
func Discover(ctx context.Context, client *http.Client, issuer, discoveryURL string) (*Discovery, error) {
	if client == nil {
		client = http.DefaultClient
	}
	issuer = strings.TrimSuffix(issuer, "/")
	from := strings.TrimSuffix(discoveryURL, "/")
	if from == "" {
		from = issuer
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, from+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w", from, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w", from, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery at %s answered %s", from, resp.Status)
	}
	var d Discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("discovery at %s: decoding the document: %w", from, err)
	}
	if d.Issuer != issuer {
		return nil, fmt.Errorf("discovery at %s describes issuer %q, want %q", from, d.Issuer, issuer)
	}
	d.JWKSURL = rebase(d.JWKSURL, issuer, from)
	d.TokenURL = rebase(d.TokenURL, issuer, from)
	return &d, nil
}

// rebase moves endpoint from under oldBase to under newBase; an endpoint elsewhere stays.
func rebase(endpoint, oldBase, newBase string) string {
	if rest, ok := strings.CutPrefix(endpoint, oldBase+"/"); ok && oldBase != newBase {
		return newBase + "/" + rest
	}
	return endpoint
}
