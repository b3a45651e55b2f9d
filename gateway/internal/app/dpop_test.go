package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/shop/platform/dpop"
	"example.com/shop/platform/testkit"
)

// bound is a shopper's DPoP key and an access token bound to it, as Keycloak issues to
// the web shop.
type bound struct {
	key   *dpop.Key
	token string
}

func (h *harness) bound(subject string) bound {
	h.t.Helper()
	k, err := dpop.NewKey()
	if err != nil {
		h.t.Fatal(err)
	}
	// typ DPoP, as Keycloak marks bound access tokens.
	tok := h.iss.Token(h.t, h.iss.User(subject, "alice", "USER").With(testkit.Claims{"typ": "DPoP", "cnf": map[string]any{"jkt": k.Thumbprint()}}))
	return bound{key: k, token: tok}
}

// proofFor signs a proof with k for method and the gateway URL of path.
func (h *harness) proofFor(k *dpop.Key, method, path, token string) string {
	h.t.Helper()
	p, err := k.Proof(method, "http://"+h.addr+path, token, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// dpopRequest builds a request with `Authorization: DPoP token` and the proofs given.
func (h *harness) dpopRequest(method, path, token string, proofs ...string) *http.Request {
	req := h.request(method, path, "")
	req.Header.Set("Authorization", "DPoP "+token)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return req
}

// refusedWith asserts a 401 whose challenge names code, and that no upstream saw it.
func refusedWith(t *testing.T, h *harness, resp *http.Response, body, code string, hitsBefore int64) {
	t.Helper()
	isProblem(t, resp, body, http.StatusUnauthorized)
	challenge := resp.Header.Get("WWW-Authenticate")
	if !strings.Contains(challenge, `error="`+code+`"`) || !strings.Contains(challenge, `DPoP algs="ES256`) {
		t.Fatalf("WWW-Authenticate %q, want error %s and the DPoP algorithms", challenge, code)
	}
	if h.upstreamHits() != hitsBefore {
		t.Fatal("a refused request reached an upstream")
	}
}

// TestDPoPBoundTokenNeedsAFreshProofEveryTime is the happy path and the replay, with the
// token cache on (the default): the second request finds the token in the cache and is
// still refused, because the cache never vouches for a proof.
func TestDPoPBoundTokenNeedsAFreshProofEveryTime(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_DPOP_CLIENTS": "webapp"})
	b := h.bound("alice-sub")
	proof := h.proofFor(b.key, "GET", "/api/orders", b.token)
	resp, body := h.do(h.dpopRequest("GET", "/api/orders", b.token, proof))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a fresh proof: %d %s", resp.StatusCode, body)
	}
	// Upstream, the token is a plain bearer token and the proof is gone.
	got, _ := h.order.lastRequest(t)
	if got.Header.Get("Authorization") != "Bearer "+b.token || got.Header.Get("DPoP") != "" {
		t.Fatalf("upstream saw Authorization %q and DPoP %q", got.Header.Get("Authorization"), got.Header.Get("DPoP"))
	}
	if h.gw.Tokens == nil || h.gw.Tokens.Len() != 1 {
		t.Fatal("the bound token was not cached; the replay below would not test a cache hit")
	}
	hits := h.upstreamHits()
	resp, body = h.do(h.dpopRequest("GET", "/api/orders", b.token, proof))
	refusedWith(t, h, resp, body, dpop.CodeInvalidProof, hits)
	if !strings.Contains(body, "used before") {
		t.Fatalf("replay refused for another reason: %s", body)
	}
	// A new proof works again: the refusal changed nothing for the honest client.
	resp, body = h.do(h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/orders", b.token)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the next fresh proof: %d %s", resp.StatusCode, body)
	}
}

// TestDPoPAttacksAreRefused: everything a thief holding a bound token, or a proof seen in
// flight, might try. Each is refused with 401 and the right error, twice (the first
// refusal must not warm a cache for the second), and no upstream sees any of it.
func TestDPoPAttacksAreRefused(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_DPOP_CLIENTS": "webapp", "GATEWAY_BURST": "1000"})
	b := h.bound("alice-sub")
	thief, _ := dpop.NewKey()
	// Warm the token cache with the victim's token, so every attack meets a cache hit.
	if resp, body := h.do(h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/orders", b.token))); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
	}
	unbound := h.shopper // azp webapp, no cnf
	raw := func(header map[string]any, claims map[string]any, key *ecdsa.PrivateKey) string {
		opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
		for k, v := range header {
			opts.ExtraHeaders[jose.HeaderKey(k)] = v
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	victimPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	url := "http://" + h.addr + "/api/orders"
	claims := func(more map[string]any) map[string]any {
		c := map[string]any{"jti": rand.Text(), "htm": "GET", "htu": url, "iat": time.Now().Unix(), "ath": dpop.TokenHash(b.token)}
		for k, v := range more {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	// A key the token is bound to, held by the test, for proofs with chosen claims.
	crafted := h.iss.Token(t, h.iss.User("alice-sub", "alice", "USER").With(testkit.Claims{"cnf": map[string]any{"jkt": jktOf(t, victimPriv)}}))
	good := func(more map[string]any) string {
		c := claims(more)
		if _, ok := more["ath"]; !ok {
			c["ath"] = dpop.TokenHash(crafted)
		}
		return raw(map[string]any{"typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: victimPriv.Public()}}, c, victimPriv)
	}
	if resp, body := h.do(h.dpopRequest("GET", "/api/orders", crafted, good(nil))); resp.StatusCode != 200 {
		t.Fatalf("control: a hand-made proof is refused: %d %s", resp.StatusCode, body)
	}

	cases := []struct {
		name string
		req  func() *http.Request
		code string
	}{
		{"a bound token sent as Bearer", func() *http.Request { return h.request("GET", "/api/orders", b.token) }, dpop.CodeInvalidToken},
		{"a bound token with no proof", func() *http.Request { return h.dpopRequest("GET", "/api/orders", b.token) }, dpop.CodeInvalidProof},
		{"a proof by the thief's own key", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(thief, "GET", "/api/orders", b.token))
		}, dpop.CodeInvalidToken},
		{"a proof for another method", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "DELETE", "/api/orders", b.token))
		}, dpop.CodeInvalidProof},
		{"a proof for another URL", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/payments", b.token))
		}, dpop.CodeInvalidProof},
		{"a proof for another token (ath)", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/orders", h.shopper))
		}, dpop.CodeInvalidProof},
		{"a proof without ath", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/orders", ""))
		}, dpop.CodeInvalidProof},
		{"iat ten minutes old", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", crafted, good(map[string]any{"iat": time.Now().Add(-10 * time.Minute).Unix()}))
		}, dpop.CodeInvalidProof},
		{"iat in the future", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", crafted, good(map[string]any{"iat": time.Now().Add(10 * time.Minute).Unix()}))
		}, dpop.CodeInvalidProof},
		{"typ JWT", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", crafted, raw(map[string]any{"typ": "JWT", "jwk": jose.JSONWebKey{Key: victimPriv.Public()}}, claims(map[string]any{"ath": dpop.TokenHash(crafted)}), victimPriv))
		}, dpop.CodeInvalidProof},
		{"alg none", func() *http.Request {
			p := strings.Split(good(nil), ".")
			return h.dpopRequest("GET", "/api/orders", crafted, noneHeader(t, victimPriv)+"."+p[1]+".")
		}, dpop.CodeInvalidProof},
		{"two DPoP headers", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", b.token, h.proofFor(b.key, "GET", "/api/orders", b.token), h.proofFor(b.key, "GET", "/api/orders", b.token))
		}, dpop.CodeInvalidProof},
		{"an unbound token of a client that must bind", func() *http.Request { return h.request("GET", "/api/orders", unbound) }, dpop.CodeInvalidToken},
		{"an unbound token under the DPoP scheme", func() *http.Request {
			return h.dpopRequest("GET", "/api/orders", unbound, h.proofFor(thief, "GET", "/api/orders", unbound))
		}, dpop.CodeInvalidToken},
	}
	for _, tc := range cases {
		for range 2 {
			hits := h.upstreamHits()
			resp, body := h.do(tc.req())
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
			}
			refusedWith(t, h, resp, body, tc.code, hits)
			if strings.Contains(body, b.token) {
				t.Fatalf("%s: the refusal shows the token", tc.name)
			}
		}
	}
	if strings.Contains(h.logs.String(), b.token) {
		t.Fatal("a token reached the logs")
	}
}

// noneHeader is the encoded header of an unsigned proof (`alg: none`).
func noneHeader(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: k.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func jktOf(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(&jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// TestDPoPReplayAcrossReplicas: two gateways share the replay cache in Redis, so a proof
// accepted by one is refused by the other; and with Redis gone, proofs are refused with a
// 503 to retry rather than let in unchecked.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	env := map[string]string{"GATEWAY_REDIS_URL": "redis://" + mr.Addr() + "/0", "GATEWAY_DPOP_CLIENTS": "webapp", "GATEWAY_BURST": "1000",
		"GATEWAY_TRUSTED_PROXIES": "127.0.0.2"}
	a := gateway(t, env)
	b := &harness{t: t, iss: a.iss, order: a.order, payment: a.payment, logs: a.logs}
	b.start(env)
	cred := a.bound("alice-sub")
	// Both replicas are addressed by the same public URL, as behind a load balancer.
	const public = "https://shop.example/api/orders"
	viaProxy := func(h *harness, proof string) *http.Request {
		req := h.dpopRequest("GET", "/api/orders", cred.token, proof)
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "shop.example")
		return req
	}
	proof, err := cred.key.Proof("GET", public, cred.token, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := a.doFrom("127.0.0.2", viaProxy(a, proof)); resp.StatusCode != http.StatusOK {
		t.Fatalf("replica a, through the trusted proxy: %d %s", resp.StatusCode, body)
	}
	hits := a.upstreamHits()
	resp, body := b.doFrom("127.0.0.2", viaProxy(b, proof))
	refusedWith(t, b, resp, body, dpop.CodeInvalidProof, hits)

	// The same forwarding headers from a client that is not a trusted proxy are dropped:
	// the gateway then sees its own URL, and a proof for the public one does not match.
	fresh, _ := cred.key.Proof("GET", public, cred.token, "")
	resp, body = a.do(viaProxy(a, fresh))
	refusedWith(t, a, resp, body, dpop.CodeInvalidProof, hits)
	if !strings.Contains(body, "htu") {
		t.Fatalf("refused for another reason than the URL: %s", body)
	}

	mr.Close()
	resp, body = a.doFrom("127.0.0.2", viaProxy(a, fresh))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with Redis down: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if a.upstreamHits() != hits {
		t.Fatal("an unchecked proof reached an upstream")
	}
}
