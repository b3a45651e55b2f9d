package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"example.com/shop/platform/dpop"
)

const (
	target = "https://shop.example/api/orders"
	token  = "header.payload.signature"
)

func newVerifier(t *testing.T, now func() time.Time) *dpop.Verifier {
	t.Helper()
	v, err := dpop.NewVerifier(dpop.Config{Replay: dpop.NewMemory(0, now), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newKey(t *testing.T) *dpop.Key {
	t.Helper()
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func proof(t *testing.T, k *dpop.Key, method, url, tok string) string {
	t.Helper()
	p, err := k.Proof(method, url, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// craft signs header and claims by hand with an ECDSA P-256 key (ES256), so a test can
// write what no honest signer would: a private jwk, another typ, a missing claim.
func craft(t *testing.T, priv *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := enc(t, header) + "." + enc(t, claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func publicJWK(t *testing.T, priv *ecdsa.PrivateKey) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func thumbprint(t *testing.T, priv *ecdsa.PrivateKey) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(&jose.JSONWebKey{Key: priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{"jti": rand.Text(), "htm": "GET", "htu": target, "iat": now.Unix(), "ath": dpop.TokenHash(token)}
}

func TestVerifyAcceptsAFreshProofOnce(t *testing.T) {
	v := newVerifier(t, nil)
	k := newKey(t)
	p := proof(t, k, "GET", "HTTPS://Shop.Example:443/api/orders?page=2#top", token)
	got, err := v.Verify(context.Background(), dpop.Request{Proof: p, Method: "GET", URL: target, AccessToken: token, BoundTo: k.Thumbprint()})
	if err != nil {
		t.Fatalf("a fresh proof was refused: %v", err)
	}
	if got.Thumbprint != k.Thumbprint() {
		t.Fatalf("thumbprint %q, want %q", got.Thumbprint, k.Thumbprint())
	}
	_, err = v.Verify(context.Background(), dpop.Request{Proof: p, Method: "GET", URL: target, AccessToken: token, BoundTo: k.Thumbprint()})
	requireCode(t, err, dpop.CodeInvalidProof, "used before")
}

// TestVerifyRefusesAttacks is RFC 9449's list of what a proof must not get away with.
func TestVerifyRefusesAttacks(t *testing.T) {
	now := time.Now()
	k := newKey(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt := thumbprint(t, priv)
	header := func(more map[string]any) map[string]any {
		h := map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": publicJWK(t, priv)}
		for k, v := range more {
			h[k] = v
		}
		return h
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := goodClaims(now)
		change(c)
		return c
	}
	privateJWK := publicJWK(t, priv)
	privateJWK["d"] = base64.RawURLEncoding.EncodeToString(priv.D.FillBytes(make([]byte, 32)))
	hs := func() string {
		input := enc(t, map[string]any{"alg": "HS256", "typ": "dpop+jwt", "jwk": publicJWK(t, priv)}) + "." + enc(t, goodClaims(now))
		// The MAC key is the public key's x coordinate: public, so anyone could sign.
		m := hmac.New(sha256.New, priv.X.Bytes())
		m.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	none := enc(t, map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": publicJWK(t, priv)}) + "." + enc(t, goodClaims(now)) + "."

	// A control: the crafting itself is sound, so each refusal below is the change's doing.
	v := newVerifier(t, func() time.Time { return now })
	if _, err := v.Verify(context.Background(), dpop.Request{Proof: craft(t, priv, header(nil), goodClaims(now)), Method: "GET", URL: target, AccessToken: token, BoundTo: jkt}); err != nil {
		t.Fatalf("control proof refused: %v", err)
	}

	cases := []struct {
		name, proof, method, url, boundTo, code, why string
	}{
		{"no proof", "", "GET", target, jkt, dpop.CodeInvalidProof, "missing"},
		{"another method", craft(t, priv, header(nil), goodClaims(now)), "DELETE", target, jkt, dpop.CodeInvalidProof, "htm"},
		{"another URL", craft(t, priv, header(nil), goodClaims(now)), "GET", "https://shop.example/api/payments", jkt, dpop.CodeInvalidProof, "htu"},
		{"another host", craft(t, priv, header(nil), goodClaims(now)), "GET", "https://evil.example/api/orders", jkt, dpop.CodeInvalidProof, "htu"},
		{"signed by another key than the token's", proof(t, k, "GET", target, token), "GET", target, jkt, dpop.CodeInvalidToken, "another key"},
		{"jwk of another key than the signer", craft(t, priv, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": publicJWK(t, mustKey(t))}, goodClaims(now)), "GET", target, "", dpop.CodeInvalidProof, "signature"},
		{"no ath", craft(t, priv, header(nil), claims(func(c map[string]any) { delete(c, "ath") })), "GET", target, jkt, dpop.CodeInvalidProof, "ath"},
		{"wrong ath", craft(t, priv, header(nil), claims(func(c map[string]any) { c["ath"] = dpop.TokenHash("another") })), "GET", target, jkt, dpop.CodeInvalidProof, "ath"},
		{"iat too old", craft(t, priv, header(nil), claims(func(c map[string]any) { c["iat"] = now.Add(-2 * time.Minute).Unix() })), "GET", target, jkt, dpop.CodeInvalidProof, "too old"},
		{"iat in the future", craft(t, priv, header(nil), claims(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), "GET", target, jkt, dpop.CodeInvalidProof, "future"},
		{"no iat", craft(t, priv, header(nil), claims(func(c map[string]any) { delete(c, "iat") })), "GET", target, jkt, dpop.CodeInvalidProof, "iat"},
		{"no jti", craft(t, priv, header(nil), claims(func(c map[string]any) { delete(c, "jti") })), "GET", target, jkt, dpop.CodeInvalidProof, "jti"},
		{"a private key in the jwk", craft(t, priv, header(map[string]any{"jwk": privateJWK}), goodClaims(now)), "GET", target, jkt, dpop.CodeInvalidProof, "parsed"},
		{"no jwk", craft(t, priv, map[string]any{"alg": "ES256", "typ": "dpop+jwt"}, goodClaims(now)), "GET", target, jkt, dpop.CodeInvalidProof, "jwk"},
		{"typ JWT", craft(t, priv, header(map[string]any{"typ": "JWT"}), goodClaims(now)), "GET", target, jkt, dpop.CodeInvalidProof, "typ"},
		{"alg none", none, "GET", target, jkt, dpop.CodeInvalidProof, "algorithm"},
		{"alg HS256", hs(), "GET", target, jkt, dpop.CodeInvalidProof, "algorithm"},
		{"JWS JSON serialization", `{"payload":"e30","signatures":[]}`, "GET", target, jkt, dpop.CodeInvalidProof, "compact"},
		{"oversized", strings.Repeat("a", 9000) + "..", "GET", target, jkt, dpop.CodeInvalidProof, "compact"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, func() time.Time { return now })
			_, err := v.Verify(context.Background(), dpop.Request{Proof: tc.proof, Method: tc.method, URL: tc.url, AccessToken: token, BoundTo: tc.boundTo})
			requireCode(t, err, tc.code, tc.why)
		})
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A refused proof does not use up its jti: otherwise anyone who saw a proof in flight
// could burn it by sending a broken copy first.
func TestRefusedProofKeepsItsID(t *testing.T) {
	v := newVerifier(t, nil)
	k := newKey(t)
	p := proof(t, k, "GET", target, token)
	if _, err := v.Verify(context.Background(), dpop.Request{Proof: p, Method: "POST", URL: target, AccessToken: token}); err == nil {
		t.Fatal("a proof for GET passed for POST")
	}
	if _, err := v.Verify(context.Background(), dpop.Request{Proof: p, Method: "GET", URL: target, AccessToken: token, BoundTo: k.Thumbprint()}); err != nil {
		t.Fatalf("the proof was used up by a refused attempt: %v", err)
	}
}

func TestNonce(t *testing.T) {
	v := newVerifier(t, nil)
	k := newKey(t)
	_, err := v.Verify(context.Background(), dpop.Request{Proof: proof(t, k, "POST", target, ""), Method: "POST", URL: target, Nonce: "n-1"})
	requireCode(t, err, dpop.CodeUseNonce, "nonce")
	p, err := k.Proof("POST", target, "", "n-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), dpop.Request{Proof: p, Method: "POST", URL: target, Nonce: "n-1"}); err != nil {
		t.Fatalf("a proof with the nonce was refused: %v", err)
	}
}

func TestReplayCacheFailureIsNotAVerdict(t *testing.T) {
	v, err := dpop.NewVerifier(dpop.Config{Replay: failing{}})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	_, err = v.Verify(context.Background(), dpop.Request{Proof: proof(t, k, "GET", target, token), Method: "GET", URL: target, AccessToken: token})
	if !errors.Is(err, dpop.ErrReplayCheck) {
		t.Fatalf("err = %v, want ErrReplayCheck", err)
	}
}

type failing struct{}

func (failing) FirstUse(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("down")
}

func TestNewVerifierRefusesSymmetricAlgorithms(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{"none", jose.HS256} {
		if _, err := dpop.NewVerifier(dpop.Config{Replay: dpop.NewMemory(0, nil), Algorithms: []jose.SignatureAlgorithm{alg}}); err == nil {
			t.Errorf("%s was accepted as a proof algorithm", alg)
		}
	}
}

func TestKeyRoundTripAndLogging(t *testing.T) {
	k := newKey(t)
	der, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := dpop.ParseKey(der)
	if err != nil || back.Thumbprint() != k.Thumbprint() {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	d := base64.RawURLEncoding.EncodeToString(der)
	for _, s := range []string{k.String(), k.LogValue().String()} {
		if strings.Contains(s, d) || !strings.Contains(s, k.Thumbprint()) {
			t.Errorf("a key shows as %q", s)
		}
	}
}

func TestRequestURL(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Shop.Example:443/api/orders?x=1#f": "https://shop.example/api/orders",
		"http://gateway:8000/api/orders":            "http://gateway:8000/api/orders",
		"http://h:80":                               "http://h/",
		"http://[::1]:8000/a":                       "http://[::1]:8000/a",
	} {
		if got, err := dpop.RequestURL(in); err != nil || got != want {
			t.Errorf("RequestURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/api/orders", "ftp://h/x", "https://user@h/x"} {
		if _, err := dpop.RequestURL(bad); err == nil {
			t.Errorf("RequestURL(%q) accepted", bad)
		}
	}
}

func TestMemoryIsBoundedAndConcurrent(t *testing.T) {
	now := time.Now()
	m := dpop.NewMemory(2, func() time.Time { return now })
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if ok, err := m.FirstUse(ctx, id, time.Minute); !ok || err != nil {
			t.Fatalf("%s: %v %v", id, ok, err)
		}
	}
	if ok, err := m.FirstUse(ctx, "c", time.Minute); ok || !errors.Is(err, dpop.ErrFull) {
		t.Fatalf("a full cache took a third id: %v %v", ok, err)
	}
	now = now.Add(2 * time.Minute)
	if ok, err := m.FirstUse(ctx, "c", time.Minute); !ok || err != nil {
		t.Fatalf("expired ids were not dropped: %v %v", ok, err)
	}

	// Many goroutines racing with one id: exactly one wins.
	shared := dpop.NewMemory(0, nil)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if ok, _ := shared.FirstUse(ctx, "same", time.Minute); ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d goroutines won the same id", wins.Load())
	}
}

func requireCode(t *testing.T, err error, code, why string) {
	t.Helper()
	var e *dpop.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a %s refusal", err, code)
	}
	if e.Code != code || !strings.Contains(e.Description, why) {
		t.Fatalf("refused with %s %q, want %s mentioning %q", e.Code, e.Description, code, why)
	}
}
