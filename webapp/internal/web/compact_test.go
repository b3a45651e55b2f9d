package web_test

import (
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/oidctest"
)

// TestCallbackRefusesJSONSerializedIDTokens: the realm's own ID token, signature intact,
// rewritten in the JWS JSON serialization (with the key id moved into the unprotected
// header, or a jku added there) does not log anyone in: only a compact JWT is an ID token.
func TestCallbackRefusesJSONSerializedIDTokens(t *testing.T) {
	cases := map[string]func(kc *oidctest.Provider, compact string) string{
		"flattened": func(_ *oidctest.Provider, compact string) string { return testkit.JWSJSON(t, compact, false, nil) },
		"general":   func(_ *oidctest.Provider, compact string) string { return testkit.JWSJSON(t, compact, true, nil) },
		"kid and jku unprotected": func(kc *oidctest.Provider, compact string) string {
			// Re-signed without a kid in the protected header, which the unprotected one supplies.
			priv, kid := kc.Key()
			var claims testkit.Claims
			jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
				t.Fatal(err)
			}
			return testkit.JWSJSON(t, testkit.Sign(t, claims, jose.RS256, priv, nil), false,
				map[string]any{"kid": kid, "jku": "http://attacker.example/keys"})
		},
	}
	t.Run("compact, the control", func(t *testing.T) {
		e := newEnv(t)
		e.kc.ReserializeID = func(compact string) string { return compact }
		b := e.browser()
		b.follow(startLogin(t, b, oidctest.Alice))
		if !loggedIn(t, b) {
			t.Fatal("the compact ID token did not log the user in")
		}
	})
	for name, reserialize := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.kc.ReserializeID = func(compact string) string { return reserialize(e.kc, compact) }
			b := e.browser()
			r := b.follow(startLogin(t, b, oidctest.Alice))
			mustStatus(t, r, 400)
			mustContain(t, r, "You are not logged in", "could not be verified", `id="login"`)
			if loggedIn(t, b) {
				t.Fatal("a JSON-serialized ID token logged the user in")
			}
		})
	}
}
