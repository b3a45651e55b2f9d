package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/shop/platform/dpop"
)

// ClientKeys are the keys the webapp authenticates to Keycloak with (private_key_jwt, RFC
// 7523): the first signs client assertions, and all are published in the webapp's JWKS,
// which the realm reads (`use.jwks.url`). Listing a new key before it signs, and an old
// one for a while after, rotates keys without a failed login. Every replica loads the same
// file, so whichever replica signs, the realm finds its key.
type ClientKeys struct {
	signer jose.Signer
	public jose.JSONWebKeySet
}

// ClientKeyAlgorithm is the assertion's algorithm: ES256, which FAPI 2.0 allows.
const ClientKeyAlgorithm = jose.ES256

// ParseClientKeys reads PEM "PRIVATE KEY" blocks (PKCS #8, ECDSA P-256), signing key first.
func ParseClientKeys(pemBytes []byte) (*ClientKeys, error) {
	var keys []*ecdsa.PrivateKey
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: client key %d: %w", len(keys)+1, err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("auth: client key %d is not an ECDSA P-256 key", len(keys)+1)
		}
		keys = append(keys, ec)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PRIVATE KEY block in the client key file")
	}
	return newClientKeys(keys)
}

// GenerateClientKeys makes one fresh key, for a single process in development: a second
// replica would generate another, which the realm may not have fetched yet.
func GenerateClientKeys() (*ClientKeys, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newClientKeys([]*ecdsa.PrivateKey{k})
}

// EncodeClientKey writes a fresh client key as PEM, for `make certs`.
func EncodeClientKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newClientKeys(keys []*ecdsa.PrivateKey) (*ClientKeys, error) {
	ck := &ClientKeys{}
	for _, k := range keys {
		pub := jose.JSONWebKey{Key: k.Public(), Algorithm: string(ClientKeyAlgorithm), Use: "sig"}
		kid, err := dpop.Thumbprint(&pub)
		if err != nil {
			return nil, err
		}
		pub.KeyID = kid
		ck.public.Keys = append(ck.public.Keys, pub)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: ClientKeyAlgorithm, Key: jose.JSONWebKey{Key: keys[0], KeyID: ck.public.Keys[0].KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	ck.signer = signer
	return ck, nil
}

// JWKS is the public key set the webapp serves at JWKSPath.
func (k *ClientKeys) JWKS() jose.JSONWebKeySet { return k.public }

// assertionTTL is the client assertion's lifetime: long enough for one request.
const assertionTTL = time.Minute

// ClientAssertionType is the client_assertion_type of a JWT assertion (RFC 7523).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertion signs a client assertion for one request (RFC 7523 section 3, and FAPI 2.0's
// rule that the audience is the issuer alone): issuer and subject the client, a fresh
// `jti` the realm refuses to see twice, and a short `exp`.
func (k *ClientKeys) assertion(clientID, issuer string, now time.Time) (string, error) {
	return jwt.Signed(k.signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{issuer},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(assertionTTL)),
	}).Serialize()
}
