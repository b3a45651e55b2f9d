package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"example.com/shop/integration/harness"
)

// TestGatewayRefusesAmbiguousTokens sends real Keycloak tokens through the real gateway the
// way RFC 6750 forbids: two Authorization headers, a token in the query (beside the header
// or alone, on a public route too), and a token rewritten in the JWS JSON serialization.
// The first kinds get 400 invalid_request, the last 401 invalid_token, and a refused order
// is never placed.
func TestGatewayRefusesAmbiguousTokens(t *testing.T) {
	alice, bob := apiToken(t, harness.Alice), apiToken(t, harness.Bob)
	send := func(method, path, body string, authorization ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, shop.GatewayURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "ambiguous-"+strings.ReplaceAll(t.Name(), "/", "-"))
		}
		req.Header["Authorization"] = authorization
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	var before []order
	if st := apiGet(t, alice, "/api/orders", &before); st != http.StatusOK {
		t.Fatalf("alice's orders: %d", st)
	}
	var products []struct {
		ID string `json:"id"`
	}
	if st := apiGet(t, alice, "/api/public/products", &products); st != http.StatusOK || len(products) == 0 {
		t.Fatalf("catalog: %d", st)
	}
	place := `{"items":[{"productId":"` + products[0].ID + `","quantity":1}]}`

	for _, tc := range []struct {
		name, method, path, body string
		authorization            []string
	}{
		{"two bearer tokens", http.MethodGet, "/api/orders", "", []string{"Bearer " + alice, "Bearer " + bob}},
		{"bearer then basic", http.MethodGet, "/api/orders", "", []string{"Bearer " + alice, "Basic YWxpY2U6YWxpY2U="}},
		{"an order placed with two tokens", http.MethodPost, "/api/orders", place, []string{"Bearer " + alice, "Bearer " + bob}},
		{"header and query", http.MethodGet, "/api/orders?access_token=" + url.QueryEscape(bob), "", []string{"Bearer " + alice}},
		{"query alone on a public route", http.MethodGet, "/api/public/products?access_token=" + url.QueryEscape(alice), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(tc.method, tc.path, tc.body, tc.authorization...)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Fatalf("status %d, WWW-Authenticate %q: %s; want 400 invalid_request", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
		})
	}

	t.Run("a real token in the JWS JSON serialization", func(t *testing.T) {
		parts := strings.Split(alice, ".")
		doc, _ := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})
		resp, body := send(http.MethodGet, "/api/orders", "", "Bearer "+string(doc))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "compact") {
			t.Fatalf("status %d, WWW-Authenticate %q: %s; want 401 naming the compact form", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	})

	var after []order
	if st := apiGet(t, alice, "/api/orders", &after); st != http.StatusOK || len(after) != len(before) {
		t.Fatalf("alice's orders: %d, %d before and %d after the refused requests", st, len(before), len(after))
	}
}
