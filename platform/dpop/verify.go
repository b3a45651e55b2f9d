package dpop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The error codes of RFC 9449 section 7.1, used in WWW-Authenticate challenges.
const (
	// CodeInvalidProof: the proof is missing, malformed, badly signed, stale, replayed, or
	// for another request or token.
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeInvalidToken: the token is bound to another key, or a bound token came as Bearer.
	CodeInvalidToken = "invalid_token"
	// CodeUseNonce: the server wants a nonce it sent in DPoP-Nonce (RFC 9449 section 9).
	CodeUseNonce = "use_dpop_nonce"
)

// DefaultAlgorithms are the proof signing algorithms accepted when none are configured:
// the asymmetric ones FAPI 2.0 allows. `none` and the HMAC algorithms are never accepted,
// whatever the configuration says: anyone can compute those.
var DefaultAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.PS384, jose.EdDSA}

// Error is a refused proof: the code for the challenge and a description for the client.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalidProof(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// ErrReplayCheck wraps a failure of the replay cache: the proof could not be checked,
// which is an outage (try again), not a verdict on the proof.
var ErrReplayCheck = errors.New("dpop: the replay cache is unavailable")

// ReplayCache remembers proof ids. FirstUse records id for ttl and reports whether it was
// new; it must be atomic across every replica that verifies proofs, or a proof replayed
// to another replica would pass.
type ReplayCache interface {
	FirstUse(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// Config configures a Verifier.
type Config struct {
	// Algorithms is the allowlist of proof algorithms; DefaultAlgorithms when empty.
	Algorithms []jose.SignatureAlgorithm
	// MaxAge is how old (by `iat`) a proof may be; 60s when zero.
	MaxAge time.Duration
	// Leeway is how far in the future `iat` may lie (clock skew); 5s when zero.
	Leeway time.Duration
	// Replay remembers the ids of the proofs seen; required.
	Replay ReplayCache
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	algs  []jose.SignatureAlgorithm
	names string
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Replay == nil {
		return nil, errors.New("dpop: a replay cache is required")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		if a == "none" || strings.HasPrefix(string(a), "HS") {
			return nil, fmt.Errorf("dpop: algorithm %q is not allowed for proofs", a)
		}
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	names := make([]string, len(cfg.Algorithms))
	for i, a := range cfg.Algorithms {
		names[i] = string(a)
	}
	return &Verifier{cfg: cfg, algs: cfg.Algorithms, names: strings.Join(names, " ")}, nil
}

// Algorithms is the allowlist as the `algs` parameter of a DPoP challenge writes it.
func (v *Verifier) Algorithms() string { return v.names }

// Request is what a proof must match.
type Request struct {
	// Proof is the value of the request's DPoP header.
	Proof string
	// Method is the request's method; URL the request's URL as the client addressed it
	// (the public URL behind proxies).
	Method, URL string
	// AccessToken is the token the request carries, "" at a token endpoint; with one,
	// the proof must carry its hash (`ath`).
	AccessToken string
	// BoundTo is the token's `cnf.jkt`: the proof must be signed by that key. Empty at a
	// token endpoint, where the proof names the key to bind.
	BoundTo string
	// Nonce, when set, is the nonce the proof must carry.
	Nonce string
}

// Verified is what a valid proof established.
type Verified struct {
	// Thumbprint is the proof key's JWK thumbprint, to bind a token to (token endpoint).
	Thumbprint string
	ID         string
	IssuedAt   time.Time
}

// maxProofBytes bounds what is parsed: a proof with an RSA-4096 key is under 2 KiB.
const maxProofBytes = 8 << 10

// Verify checks a proof as RFC 9449 section 4.3 lists: one compact JWS of type dpop+jwt,
// signed with an allowed algorithm by the public key in its own `jwk` header (never a
// private one), for this method and URL, recent, with a `jti` not seen before, and, for a
// token, with the token's hash and signed by the key the token is bound to. The replay
// check comes last, so a proof that fails any other check does not use up its `jti`.
func (v *Verifier) Verify(ctx context.Context, r Request) (*Verified, error) {
	if r.Proof == "" {
		return nil, invalidProof("the DPoP header with a proof is missing")
	}
	if len(r.Proof) > maxProofBytes || strings.Count(r.Proof, ".") != 2 {
		return nil, invalidProof("the proof is not a compact JWS")
	}
	// ParseSignedCompact: the JSON serialization would bring an unprotected header no
	// signature covers. It refuses algorithms off the list, `none` and HS256 included, and
	// an embedded jwk with private key material.
	jws, err := jose.ParseSignedCompact(r.Proof, v.algs)
	if err != nil {
		return nil, invalidProof("the proof cannot be parsed or its algorithm is not allowed")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalidProof("the proof must carry one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != ProofType {
		return nil, invalidProof("the proof's typ must be %s", ProofType)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() {
		return nil, invalidProof("the proof must carry the public key that signed it in its jwk header")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalidProof("the proof's signature does not verify with its jwk")
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidProof("the proof's claims cannot be read")
	}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, invalidProof("the proof's jwk has no thumbprint")
	}
	now := v.cfg.Now()
	iat := time.Unix(c.IssuedAt, 0)
	want, err := RequestURL(r.URL)
	if err != nil {
		return nil, err
	}
	got, _ := RequestURL(c.URL)
	switch {
	case c.ID == "" || len(c.ID) > 256:
		return nil, invalidProof("the proof needs a jti")
	case c.Method != r.Method:
		return nil, invalidProof("the proof is for another method (htm)")
	case got != want:
		return nil, invalidProof("the proof is for another URL (htu)")
	case c.IssuedAt == 0:
		return nil, invalidProof("the proof needs an iat")
	case iat.After(now.Add(v.cfg.Leeway)):
		return nil, invalidProof("the proof is issued in the future (iat)")
	case now.Sub(iat) > v.cfg.MaxAge:
		return nil, invalidProof("the proof is too old (iat)")
	case r.Nonce != "" && subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(r.Nonce)) != 1:
		return nil, &Error{Code: CodeUseNonce, Description: "the proof must carry the server's nonce"}
	}
	if r.AccessToken != "" {
		if c.AccessTokenHash == "" {
			return nil, invalidProof("the proof needs the access token's hash (ath)")
		}
		if subtle.ConstantTimeCompare([]byte(c.AccessTokenHash), []byte(TokenHash(r.AccessToken))) != 1 {
			return nil, invalidProof("the proof is for another access token (ath)")
		}
	}
	if r.BoundTo != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(r.BoundTo)) != 1 {
		return nil, &Error{Code: CodeInvalidToken, Description: "the access token is bound to another key"}
	}
	// One key's jti cannot use up another's; the hash keeps cache keys short whatever the
	// client wrote.
	sum := sha256.Sum256([]byte(jkt + "\x00" + c.ID))
	first, err := v.cfg.Replay.FirstUse(ctx, base64.RawURLEncoding.EncodeToString(sum[:]), v.cfg.MaxAge+v.cfg.Leeway)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReplayCheck, err)
	}
	if !first {
		return nil, invalidProof("the proof was used before (jti)")
	}
	return &Verified{Thumbprint: jkt, ID: c.ID, IssuedAt: iat}, nil
}
