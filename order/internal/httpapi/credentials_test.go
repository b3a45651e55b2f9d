package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/shop/order/internal/order"
)

// TestAmbiguousCredentialsChangeNothing calls the service directly, as an attacker past
// the gateway would: placing, cancelling or deleting an order with a request that names
// its token twice (a second Authorization header, or an access_token in the query) is
// answered 400 invalid_request, whichever token comes first, and nothing changes.
func TestAmbiguousCredentialsChangeNothing(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	placed := e.createOrder(r.alice, order.Line{ProductID: mugID, Quantity: 1})
	place := `{"items":[{"productId":"` + mugID + `","quantity":2}]}`
	cancel := "/api/orders/" + placed.ID + "/cancel"

	cases := []struct {
		name, method, path, body string
		authorization            []string
	}{
		{"place: alice then bob", http.MethodPost, "/api/orders", place, []string{"Bearer " + r.alice, "Bearer " + r.bob}},
		{"place: alice then Basic", http.MethodPost, "/api/orders", place, []string{"Bearer " + r.alice, "Basic YWxpY2U6c2VjcmV0"}},
		{"place: alice then garbage", http.MethodPost, "/api/orders", place, []string{"Bearer " + r.alice, "garbage"}},
		{"place: header and query", http.MethodPost, "/api/orders?access_token=" + url.QueryEscape(r.bob), place, []string{"Bearer " + r.alice}},
		{"cancel: owner then another shopper", http.MethodPost, cancel, "", []string{"Bearer " + r.alice, "Bearer " + r.bob}},
		{"cancel: query alone", http.MethodPost, cancel + "?access_token=" + url.QueryEscape(r.alice), "", nil},
		{"delete: admin then garbage", http.MethodDelete, "/api/orders/" + placed.ID, "", []string{"Bearer " + r.admin, "garbage"}},
	}
	before := e.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header["Authorization"] = tc.authorization
			resp, err := e.api.App.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			res := response{status: resp.StatusCode, header: resp.Header, body: raw}
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.status, raw)
			}
			if p := res.problem(t); p.Detail == "" {
				t.Fatalf("a 400 that says nothing: %s", res)
			}
			if got := res.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_request"`) {
				t.Fatalf("WWW-Authenticate %q, want invalid_request", got)
			}
		})
	}
	if e.snapshot() != before {
		t.Fatal("a refused request changed the store")
	}
	// The control: the owner's header alone cancels.
	if res := e.do(http.MethodPost, cancel, r.alice, nil); res.status != http.StatusOK {
		t.Fatalf("the plain cancel: %s", res)
	}
}
