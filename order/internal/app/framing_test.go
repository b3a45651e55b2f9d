package app

import (
	"encoding/json"
	"net/http"
	"testing"

	"example.com/shop/platform/testkit"
)

// TestSmugglingIsRefused: an order placement whose length is given both by Content-Length
// and by chunks, with a second placement hidden behind the chunked body, sent straight to
// the service as a load balancer going by Content-Length would pass it on. The service
// answers once, 400, closes the connection, and places no order.
func TestSmugglingIsRefused(t *testing.T) {
	s := startStack(t, 300)
	alice := s.realm.iss.Token(t, s.realm.iss.User("alice-sub", "alice", "USER"))
	headers := []string{"Authorization: Bearer " + alice, "Content-Type: application/json"}
	const placement = `{"items":[{"productId":"0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02","quantity":1}]}`
	hidden := testkit.HiddenRequest(http.MethodPost, "/api/orders", headers, placement)

	testkit.RequireFramingRefused(t, testkit.RawExchange(t, s.public,
		testkit.SmuggleCLTE(http.MethodPost, "/api/orders", headers, placement, hidden)))
	status, body := s.call(t, http.MethodGet, "/api/orders", alice, "")
	var orders []json.RawMessage
	if status != http.StatusOK || json.Unmarshal(body, &orders) != nil || len(orders) != 0 {
		t.Fatalf("alice's orders after the refusal: %d %s, want none", status, body)
	}
}
