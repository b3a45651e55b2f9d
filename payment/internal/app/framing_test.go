package app

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/platform/testkit"
)

// TestSmugglingIsRefused: a charge whose length is given both by Content-Length and by
// chunks, with a second charge hidden behind the chunked body, sent straight to the
// service as a load balancer going by Content-Length would pass it on. The service answers
// once, 400, closes the connection, and charges nothing.
func TestSmugglingIsRefused(t *testing.T) {
	s := startStack(t, 300)
	alice := s.realm.iss.Token(t, s.realm.iss.User("alice-sub", "alice", "USER"))
	headers := func() []string {
		return []string{"Authorization: Bearer " + alice, "Content-Type: application/json", "Idempotency-Key: " + uuid.NewString()}
	}
	charge := `{"orderId":"` + uuid.NewString() + `","card":{"number":"4242424242424242","expMonth":12,"expYear":2099,"cvc":"123"}}`
	hidden := testkit.HiddenRequest(http.MethodPost, "/api/payments", headers(), charge)

	testkit.RequireFramingRefused(t, testkit.RawExchange(t, s.public,
		testkit.SmuggleCLTE(http.MethodPost, "/api/payments", headers(), charge, hidden)))
	req, _ := http.NewRequest(http.MethodGet, s.public+"/api/payments", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var payments []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&payments); err != nil || resp.StatusCode != http.StatusOK || len(payments) != 0 {
		t.Fatalf("alice's payments after the refusal: %d %s (%v), want none", resp.StatusCode, payments, err)
	}
}
