package testkit

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// JWSJSON re-serializes a compact token in the JWS JSON serialization (RFC 7515 section
// 7.2), signature intact: flattened, or general when general is set. unprotected, when
// not nil, becomes the unprotected header, which no signature covers: the form an
// attacker would use to choose a token's `kid` or `jku` after it was signed.
func JWSJSON(t testing.TB, compact string, general bool, unprotected map[string]any) string {
	t.Helper()
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d segments", len(parts))
	}
	sig := map[string]any{"protected": parts[0], "signature": parts[2]}
	if unprotected != nil {
		sig["header"] = unprotected
	}
	doc := map[string]any{"payload": parts[1]}
	if general {
		doc["signatures"] = []any{sig}
	} else {
		maps.Copy(doc, sig)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
