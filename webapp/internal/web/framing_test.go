package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"example.com/shop/platform/testkit"
)

// TestSmugglingIsRefused: an add-to-cart form post whose length is given both by
// Content-Length and by chunks, with a product page request hidden behind the chunked
// body, as a load balancer going by Content-Length would pass it on. The web shop answers
// once, 400, closes the connection, and asks the API for nothing.
func TestSmugglingIsRefused(t *testing.T) {
	e := newEnv(t)
	hidden := testkit.HiddenRequest(http.MethodGet, "/products/"+mugID, nil, "")
	form := url.Values{"productId": {mugID}, "quantity": {"1"}}.Encode()
	raw := testkit.SmuggleCLTE(http.MethodPost, "/cart/items", []string{"Content-Type: application/x-www-form-urlencoded"}, form, hidden)

	testkit.RequireFramingRefused(t, testkit.RawExchange(t, testkit.ServeLoopback(t, e.app), raw))
	if calls := e.api.callsTo(""); len(calls) != 0 {
		t.Fatalf("the API was asked %v", calls)
	}
}
