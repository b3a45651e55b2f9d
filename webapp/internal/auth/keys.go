package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var errUnknownKey = errors.New("token signed with an unknown key")

// keySet is the oidc.KeySet that verifies ID and logout tokens against the realm's JWKS.
// go-oidc's RemoteKeySet refetches the JWKS for every token it cannot verify; the
// back-channel logout endpoint accepts tokens from anyone, so a stream of forged tokens
// would become a stream of requests to Keycloak. This set refetches at most once per
// minRefresh and only accepts the key the token's `kid` names (never a `jwk`, `jku` or `x5u`
// header). platform/authn has the same logic for access tokens, unexported.
type keySet struct {
	client     *http.Client
	url        func(ctx context.Context) (string, error)
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration

	mu   sync.RWMutex
	keys map[string]jose.JSONWebKey

	fetchMu     sync.Mutex
	lastAttempt time.Time
}

// VerifySignature implements oidc.KeySet.
func (s *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, s.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must carry exactly one signature")
	}
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

func (s *keySet) lookup(kid string) (jose.JSONWebKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return k, ok
}

func (s *keySet) refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if !s.lastAttempt.IsZero() && time.Since(s.lastAttempt) < s.minRefresh {
		return nil
	}
	s.lastAttempt = time.Now()
	keys, err := s.fetch(ctx)
	if err != nil {
		return fmt.Errorf("fetching signing keys: %w", err)
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return nil
}

func (s *keySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
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
