package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/shop/integration/harness"
	"example.com/shop/platform/dpop"
)

// proving adds a DPoP proof of key to every POST it carries: the token request of a
// login, which Keycloak then answers with a token bound to the key.
type proving struct{ key *dpop.Key }

func (p proving) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		proof, err := p.key.Proof(req.Method, req.URL.String(), "", "")
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Header.Set(dpop.Header, proof)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// boundToken logs u in with a proof of key at the token endpoint and returns the real
// Keycloak token bound to it (token_type DPoP, cnf.jkt the key's thumbprint).
func boundToken(t *testing.T, u harness.User, key *dpop.Key) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := harness.NewLoginSession(ctx, shop.Keycloak.Issuer(), harness.APITester, harness.APITesterSecret, shop.WebappURL+"/auth/callback")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: proving{key}}), u.Name, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.AccessToken, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || !strings.EqualFold(tok.TokenType, "DPoP") || claims.Cnf.JKT != key.Thumbprint() {
		t.Fatalf("Keycloak did not bind the token: token_type %q, cnf.jkt %q, want %q", tok.TokenType, claims.Cnf.JKT, key.Thumbprint())
	}
	return tok.AccessToken
}

// dpopCall sends method path to the gateway with token under scheme and the proofs given;
// it returns the status and the WWW-Authenticate challenge.
func dpopCall(t *testing.T, method, path, scheme, token, body string, proofs ...string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, shop.GatewayURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", scheme+" "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, p := range proofs {
		req.Header.Add(dpop.Header, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// TestDPoPBoundTokensAtTheGateway: a token Keycloak bound to a key works at the real
// gateway only with a fresh proof of that key; every way a thief might use it is refused,
// and nothing the thief tried to create exists afterwards.
func TestDPoPBoundTokensAtTheGateway(t *testing.T) {
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	token := boundToken(t, harness.Bob, key)
	thief, _ := dpop.NewKey()
	proof := func(k *dpop.Key, method, path, tok string) string {
		p, err := k.Proof(method, shop.GatewayURL+path, tok, "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	countOrders := func() int {
		var page []order
		p := proof(key, "GET", "/api/orders", token)
		req, _ := http.NewRequest("GET", shop.GatewayURL+"/api/orders", nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set(dpop.Header, p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&page) != nil {
			t.Fatalf("the owner's own call with a fresh proof: %d", resp.StatusCode)
		}
		return len(page)
	}
	before := countOrders()

	good := proof(key, "GET", "/api/orders", token)
	if st, ch := dpopCall(t, "GET", "/api/orders", "DPoP", token, "", good); st != http.StatusOK {
		t.Fatalf("a fresh proof: %d %s", st, ch)
	}
	// A real product in stock, so each refused order would otherwise have been created.
	type product struct {
		ID string `json:"id"`
	}
	var raw json.RawMessage
	if st := apiGet(t, "", "/api/public/products", &raw); st != http.StatusOK {
		t.Fatalf("catalog: %d", st)
	}
	var products []product
	if json.Unmarshal(raw, &products) != nil {
		var page struct{ Items []product }
		_ = json.Unmarshal(raw, &page)
		products = page.Items
	}
	if len(products) == 0 {
		t.Fatalf("the catalog is empty: %s", raw)
	}
	order := `{"items":[{"productId":"` + products[0].ID + `","quantity":1}]}`
	attacks := []struct {
		name, method, path, scheme, code string
		proofs                           []string
	}{
		{"the proof replayed", "GET", "/api/orders", "DPoP", dpop.CodeInvalidProof, []string{good}},
		{"the token as Bearer", "POST", "/api/orders", "Bearer", dpop.CodeInvalidToken, nil},
		{"the token without a proof", "POST", "/api/orders", "DPoP", dpop.CodeInvalidProof, nil},
		{"a proof by the thief's key", "POST", "/api/orders", "DPoP", dpop.CodeInvalidToken, []string{proof(thief, "POST", "/api/orders", token)}},
		{"a proof for GET used for POST", "POST", "/api/orders", "DPoP", dpop.CodeInvalidProof, []string{proof(key, "GET", "/api/orders", token)}},
		{"a proof for another URL", "POST", "/api/orders", "DPoP", dpop.CodeInvalidProof, []string{proof(key, "POST", "/api/payments", token)}},
		{"a proof without ath", "POST", "/api/orders", "DPoP", dpop.CodeInvalidProof, []string{proof(key, "POST", "/api/orders", "")}},
	}
	for _, a := range attacks {
		body := ""
		if a.method == "POST" {
			body = order
		}
		st, ch := dpopCall(t, a.method, a.path, a.scheme, token, body, a.proofs...)
		if st != http.StatusUnauthorized || !strings.Contains(ch, `error="`+a.code+`"`) {
			t.Errorf("%s: %d %q, want 401 %s", a.name, st, ch, a.code)
		}
	}
	if after := countOrders(); after != before {
		t.Fatalf("bob has %d orders after the attacks, %d before", after, before)
	}
}

// TestWebappClientIsHeldToFAPI is the realm refusing the webapp client every request its
// FAPI 2.0 DPoP policy forbids, whoever sends it: an authorization request not pushed by
// PAR, and the token and PAR endpoints with the client secret it no longer has.
func TestWebappClientIsHeldToFAPI(t *testing.T) {
	issuer := shop.Keycloak.Issuer()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	direct := issuer + "/protocol/openid-connect/auth?" + url.Values{
		"client_id": {"webapp"}, "redirect_uri": {shop.WebappURL + "/auth/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"state-12345678901234"}, "nonce": {"nonce-12345678901234"},
		"code_challenge": {"abcdefghijabcdefghijabcdefghijabcdefghijabc"}, "code_challenge_method": {"S256"},
	}.Encode()
	resp, err := noRedirect.Get(direct)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode < 400 && (loc == nil || loc.Query().Get("error") == "") {
		t.Fatalf("an authorization request without PAR: %d to %v, want refused", resp.StatusCode, loc)
	}

	for _, endpoint := range []string{"/protocol/openid-connect/token", "/protocol/openid-connect/ext/par/request"} {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "response_type": {"code"},
			"redirect_uri": {shop.WebappURL + "/auth/callback"}, "scope": {"openid"},
			"client_id": {"webapp"}, "client_secret": {"webapp-dev-secret"}}
		resp, err := http.PostForm(issuer+endpoint, form)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest || body.Error == "" {
			t.Errorf("%s with the old client secret: %d %q, want refused", endpoint, resp.StatusCode, body.Error)
		}
	}
}
