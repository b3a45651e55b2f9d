package app_test

import (
	"net/http"
	"testing"

	"example.com/shop/platform/testkit"
)

// TestSmugglingIsRefusedAtTheFirstHop: a shopper's order placement whose length is given
// both by Content-Length and by chunks, with a second request hidden behind the chunked
// body, as a load balancer going by Content-Length would pass it on. The gateway answers
// once, 400, closes the connection, and neither request reaches a service.
func TestSmugglingIsRefusedAtTheFirstHop(t *testing.T) {
	h := gateway(t, nil)
	shopper := []string{"Authorization: Bearer " + h.shopper, "Content-Type: application/json"}
	hidden := testkit.HiddenRequest(http.MethodGet, "/api/orders", shopper, "")
	raw := testkit.SmuggleCLTE(http.MethodPost, "/api/orders", shopper, `{"items":[]}`, hidden)

	testkit.RequireFramingRefused(t, testkit.RawExchange(t, h.addr, raw))
	if n := h.upstreamHits(); n != 0 {
		t.Fatalf("the services received %d requests", n)
	}
}
