// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession (RFC 9449) for both
// sides: a client's key and the proofs it signs (Key), and the checks a server makes of a
// proof (Verifier). An access token bound to a key (its `cnf.jkt` claim names the key's
// thumbprint) is worth nothing without a fresh proof signed by that key, so a token that
// leaks from a log, a proxy or an internal hop cannot be replayed by whoever finds it.
//
// golang.org/x/oauth2 and go-oidc have no DPoP; this package is small and built on
// go-jose, which the shop already uses for every other JWT.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Names RFC 9449 gives the protocol's pieces.
const (
	// Scheme is the Authorization scheme of a DPoP-bound token: `Authorization: DPoP <token>`.
	Scheme = "DPoP"
	// Header carries the proof.
	Header = "DPoP"
	// NonceHeader carries a nonce a server asks the next proof to include.
	NonceHeader = "DPoP-Nonce"
	// ProofType is the `typ` header of every proof.
	ProofType = "dpop+jwt"
)

// Key is a client's DPoP key: an ECDSA P-256 key (ES256, which FAPI 2.0 allows and every
// server supports). Its private half never leaves the process except through Marshal,
// into the server-side session that owns it; it is never logged (see LogValue).
type Key struct {
	priv   *ecdsa.PrivateKey
	signer jose.Signer
	jkt    string
}

// NewKey generates a fresh key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newKey(priv)
}

// ParseKey reads a key written by Marshal.
func ParseKey(der []byte) (*Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dpop: parsing key: %w", err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("dpop: the key is not an ECDSA P-256 key")
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	// EmbedJWK puts the public key in the proof's `jwk` header, as RFC 9449 section 4.2
	// asks; go-jose embeds the public half only.
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(ProofType)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, opts)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	jkt, err := Thumbprint(&jwk)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, signer: signer, jkt: jkt}, nil
}

// Marshal returns the private key in PKCS #8 DER, for a session store.
func (k *Key) Marshal() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k.priv) }

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638), base64url: what a bound
// token's `cnf.jkt` and an authorization request's `dpop_jkt` name.
func (k *Key) Thumbprint() string { return k.jkt }

// LogValue keeps the key out of logs: only its thumbprint, which is public, is written.
func (k *Key) LogValue() slog.Value { return slog.StringValue("dpop key " + k.jkt) }

// String is LogValue for fmt.
func (k *Key) String() string { return "dpop key " + k.jkt }

// proofClaims are the claims of a proof (RFC 9449 section 4.2).
type proofClaims struct {
	ID       string `json:"jti"`
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	IssuedAt int64  `json:"iat"`
	// AccessTokenHash is set on calls to a resource server, never at the token endpoint.
	AccessTokenHash string `json:"ath,omitempty"`
	Nonce           string `json:"nonce,omitempty"`
}

// Proof signs a proof for one request: method and URL as the client addresses the server
// (the query and fragment are not part of `htu`), accessToken when the request carries
// one (its hash becomes `ath`), and nonce when the server asked for one. Each proof has a
// fresh random `jti`, so it is good for one request only.
func (k *Key) Proof(method, target, accessToken, nonce string) (string, error) {
	htu, err := RequestURL(target)
	if err != nil {
		return "", err
	}
	c := proofClaims{ID: rand.Text(), Method: method, URL: htu, IssuedAt: time.Now().Unix(), Nonce: nonce}
	if accessToken != "" {
		c.AccessTokenHash = TokenHash(accessToken)
	}
	return jwt.Signed(k.signer).Claims(c).Serialize()
}

// TokenHash is the `ath` of an access token: base64url(SHA-256(token)).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint returns the base64url JWK SHA-256 thumbprint of jwk (RFC 7638).
func Thumbprint(jwk *jose.JSONWebKey) (string, error) {
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// RequestURL is the `htu` form of a URL: scheme and host in lower case, no default port,
// no query, no fragment, and "/" for an empty path (RFC 9449 section 4.3 compares URLs
// after the normalisation of RFC 3986 sections 6.2.2 and 6.2.3). Both sides use it, so a
// client writing `HTTPS://Shop.example:443/api` and a server seeing `https://shop.example/api`
// agree.
func RequestURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "HTTP" && u.Scheme != "HTTPS") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("dpop: %q is not an http(s) URL", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}
