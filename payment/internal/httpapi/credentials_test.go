package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/processor"
)

// TestAmbiguousCredentialsChangeNothing calls the service directly, as an attacker past
// the gateway would: a charge or a refund that names its token twice (a second
// Authorization header, or an access_token in the query) is answered 400 invalid_request,
// whichever token comes first, and nothing is charged, refunded or stored.
func TestAmbiguousCredentialsChangeNothing(t *testing.T) {
	e := newTestEnv(t)
	paymentID, _ := e.paid(2599)
	order := e.orders.add(aliceSub, "pending", 1500)
	alice, bob, ada := e.tokens[owner], e.tokens[otherShopper], e.tokens[admin]
	charge, _ := json.Marshal(chargeJSON(order, processor.CardApproved))
	refund := `{"amount":500}`

	cases := []struct {
		name, path, body string
		query            string
		authorization    []string
	}{
		{"charge: owner then other shopper", "/api/payments", string(charge), "", []string{"Bearer " + alice, "Bearer " + bob}},
		{"charge: owner then Basic", "/api/payments", string(charge), "", []string{"Bearer " + alice, "Basic YWxpY2U6c2VjcmV0"}},
		{"charge: owner then garbage", "/api/payments", string(charge), "", []string{"Bearer " + alice, "garbage"}},
		{"charge: header and query", "/api/payments", string(charge), "?access_token=" + url.QueryEscape(alice), []string{"Bearer " + alice}},
		{"refund: admin then shopper", "/api/payments/" + paymentID + "/refunds", refund, "", []string{"Bearer " + ada, "Bearer " + alice}},
		{"refund: admin twice", "/api/payments/" + paymentID + "/refunds", refund, "", []string{"Bearer " + ada, "Bearer " + ada}},
		{"refund: query alone", "/api/payments/" + paymentID + "/refunds", refund, "?access_token=" + url.QueryEscape(ada), nil},
	}
	before, charges := e.dump(), e.proc.calls.Load()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hr := httptest.NewRequest(http.MethodPost, tc.path+tc.query, strings.NewReader(tc.body))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set(httpapi.HeaderIdempotencyKey, uuid.NewString())
			hr.Header["Authorization"] = tc.authorization
			resp, err := e.app.Test(hr, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			res := response{status: resp.StatusCode, header: resp.Header, body: body}
			checkAgainstSpec(t, hr, res)
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.status, body)
			}
			if p := res.problem(t); p.Detail == "" {
				t.Fatalf("a 400 that says nothing: %s", body)
			}
			if got := res.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_request"`) {
				t.Fatalf("WWW-Authenticate %q, want invalid_request", got)
			}
		})
	}
	if e.dump() != before {
		t.Fatal("a refused request changed the store")
	}
	if n := e.proc.calls.Load() - charges; n != 0 {
		t.Fatalf("refused requests reached the processor %d times", n)
	}
	// The control: the same charge with the owner's header alone goes through.
	if r := e.charge(owner, order, processor.CardApproved, uuid.NewString()); r.status != http.StatusCreated {
		t.Fatalf("the plain charge: %d %s", r.status, r.body)
	}
}
