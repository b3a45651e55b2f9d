package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// errUnknownKey is returned for a token whose `kid` is not in the issuer's key set.
var errUnknownKey = errors.New("token signed with an unknown key")

// KeySet is an oidc.KeySet over the issuer's JWKS, for every token the shop verifies
// (access tokens here; ID and logout tokens in the webapp). go-oidc's RemoteKeySet refetches
// the JWKS for every token with an unknown `kid`, so a flood of forged tokens becomes a
// flood of requests to Keycloak; this one refetches at most once per minRefresh, keeps
// serving the keys it has while the issuer is unreachable, only uses the key the `kid`
// names, and counts changes of the key set so a cache of verified tokens can drop its
// entries when the signing keys change.
type KeySet struct {
	client     *http.Client
	url        func(ctx context.Context) (string, error)
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration

	mu   sync.RWMutex
	keys map[string]jose.JSONWebKey

	fetchMu     sync.Mutex
	lastAttempt time.Time
	fetches     atomic.Int64
	generation  atomic.Uint64
}

// NewKeySet returns a key set fetching from the URL that jwksURL resolves (lazily, e.g. via
// discovery), accepting the algorithms algs, refetching at most once per minRefresh.
func NewKeySet(client *http.Client, jwksURL func(ctx context.Context) (string, error), algs []string, minRefresh time.Duration) *KeySet {
	ja := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		ja[i] = jose.SignatureAlgorithm(a)
	}
	return &KeySet{client: client, url: jwksURL, algs: ja, minRefresh: minRefresh}
}

// VerifySignature implements oidc.KeySet.
func (s *KeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	// Compact serialization only (RFC 7515 section 7.1), as RFC 9068 and OpenID Connect
	// require of tokens: the JSON serialization adds unprotected headers, which would let
	// whoever holds a token choose its `kid` (or a `jku`) without touching the signature.
	jws, err := jose.ParseSignedCompact(raw, s.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must carry exactly one signature")
	}
	// Only the key id is taken from the header: embedded `jwk`, `jku` and `x5u` headers name
	// keys chosen by whoever made the token, so they are never used.
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, errors.New("token has no key id")
	}
	key, ok := s.lookup(kid)
	if !ok {
		if err := s.refresh(ctx); err != nil {
			return nil, err
		}
		if key, ok = s.lookup(kid); !ok {
			return nil, errUnknownKey
		}
	}
	if key.Algorithm != "" && key.Algorithm != jws.Signatures[0].Header.Algorithm {
		return nil, errors.New("token algorithm does not match its key")
	}
	return jws.Verify(key.Key)
}

func (s *KeySet) loaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys) > 0
}

func (s *KeySet) lookup(kid string) (jose.JSONWebKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return k, ok
}

// refresh fetches the JWKS unless an attempt was made less than minRefresh ago. Concurrent
// callers wait for the one fetch in flight and then see its result.
func (s *KeySet) refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if !s.lastAttempt.IsZero() && time.Since(s.lastAttempt) < s.minRefresh {
		return nil
	}
	s.lastAttempt = time.Now()
	s.fetches.Add(1)
	keys, err := s.fetch(ctx)
	if err != nil {
		return fmt.Errorf("fetching signing keys: %w", err)
	}
	s.mu.Lock()
	changed := len(keys) != len(s.keys)
	for kid := range keys {
		if _, ok := s.keys[kid]; !ok {
			changed = true
		}
	}
	s.keys = keys
	s.mu.Unlock()
	if changed {
		s.generation.Add(1)
	}
	return nil
}

func (s *KeySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	url, err := s.url(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		// Keycloak publishes its encryption keys in the same set; only signing keys verify.
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") || !k.IsPublic() {
			continue
		}
		keys[k.KeyID] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no signing keys")
	}
	return keys, nil
}

// Generation changes whenever the set of signing keys changes.
func (s *KeySet) Generation() uint64 { return s.generation.Load() }

// Fetches is the number of JWKS fetches made so far.
func (s *KeySet) Fetches() int64 { return s.fetches.Load() }
