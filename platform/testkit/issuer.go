// Package testkit mints Keycloak-shaped tokens with a local key and serves OpenID discovery
// and JWKS from an httptest server, so every module tests its authentication and
// authorisation without a running Keycloak.
package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// Audience is the audience of the shop's API tokens.
const Audience = "shop-api"

// Issuer is a fake Keycloak realm: discovery, JWKS and token minting.
type Issuer struct {
	// URL is the issuer (`iss`) of the minted tokens, like http://127.0.0.1:port/realms/shop.
	URL    string
	server *httptest.Server

	mu   sync.Mutex
	keys []signingKey // published keys; the first one signs

	jwksHits atomic.Int64
	down     atomic.Bool
}

// SetDown makes discovery and JWKS answer 503 (or work again), like a Keycloak that is down.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// NewIssuer starts the fake realm; it stops when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/shop/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"authorization_endpoint":                iss.URL + "/protocol/openid-connect/auth",
			"token_endpoint":                        iss.URL + "/protocol/openid-connect/token",
			"end_session_endpoint":                  iss.URL + "/protocol/openid-connect/logout",
			"jwks_uri":                              iss.URL + "/protocol/openid-connect/certs",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			// A web login's fake realm (webapp/internal/oidctest) serves these.
			"pushed_authorization_request_endpoint":          iss.URL + "/protocol/openid-connect/ext/par/request",
			"authorization_response_iss_parameter_supported": true,
		})
	})
	mux.HandleFunc("GET /realms/shop/protocol/openid-connect/certs", func(w http.ResponseWriter, _ *http.Request) {
		iss.jwksHits.Add(1)
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, iss.JWKS())
	})
	iss.server = httptest.NewServer(mux)
	t.Cleanup(iss.server.Close)
	iss.URL = iss.server.URL + "/realms/shop"
	iss.RotateKey(t)
	return iss
}

// Handle adds a handler to the fake realm's server (e.g. a token endpoint for a test).
func (i *Issuer) Handle(t testing.TB, pattern string, h http.HandlerFunc) {
	t.Helper()
	i.server.Config.Handler.(*http.ServeMux).HandleFunc(pattern, h)
}

// RotateKey makes a new signing key. The old key stays published, as in Keycloak, until
// RetireOldKeys.
func (i *Issuer) RotateKey(t testing.TB) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append([]signingKey{{kid: uuid.NewString(), priv: priv}}, i.keys...)
}

// RetireOldKeys unpublishes every key but the current one.
func (i *Issuer) RetireOldKeys() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = i.keys[:1]
}

// JWKS is the published key set, with Keycloak's shape.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	i.mu.Lock()
	defer i.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// JWKSHits counts requests to the JWKS endpoint.
func (i *Issuer) JWKSHits() int64 { return i.jwksHits.Load() }

// Key returns the current signing key and its id, for tests that forge tokens by hand.
func (i *Issuer) Key() (*rsa.PrivateKey, string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0].priv, i.keys[0].kid
}

// Claims are a token's claims; Token starts from Keycloak's shape and applies them on top.
// A nil value deletes the claim.
type Claims map[string]any

// User returns the claims of an access token Keycloak issues to the webapp for a user.
func (i *Issuer) User(subject, username string, roles ...string) Claims {
	now := time.Now()
	return Claims{
		"iss":                i.URL,
		"sub":                subject,
		"aud":                []string{Audience, "account"},
		"exp":                now.Add(5 * time.Minute).Unix(),
		"iat":                now.Unix(),
		"jti":                uuid.NewString(),
		"typ":                "Bearer",
		"azp":                "webapp",
		"sid":                uuid.NewString(),
		"scope":              "openid profile email",
		"preferred_username": username,
		"realm_access":       map[string]any{"roles": roles},
	}
}

// Service returns the claims of a client-credentials token of a service account.
func (i *Issuer) Service(clientID, audience string, roles ...string) Claims {
	c := i.User(uuid.NewString(), "service-account-"+clientID, roles...)
	c["azp"] = clientID
	c["aud"] = []string{audience}
	c["scope"] = "profile email"
	delete(c, "sid")
	return c
}

// With returns a copy of c with more claims set (nil deletes).
func (c Claims) With(more Claims) Claims {
	out := maps.Clone(c)
	for k, v := range more {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// Token signs claims with the current key as RS256 with Keycloak's header.
func (i *Issuer) Token(t testing.TB, c Claims) string {
	t.Helper()
	priv, kid := i.Key()
	return Sign(t, c, jose.RS256, priv, map[jose.HeaderKey]any{"kid": kid})
}

// Sign signs claims with any key and header fields, for forged tokens in tests.
func Sign(t testing.TB, c Claims, alg jose.SignatureAlgorithm, key any, header map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range header {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
