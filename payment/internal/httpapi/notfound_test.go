package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/platform/problem"
)

// withoutRequestFields is a problem body with the fields that differ from one request to
// the next (the request id, the instance) taken out, re-encoded so two bodies compare byte
// for byte in everything else, key order included.
func withoutRequestFields(t *testing.T, r response) []byte {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("content type %q: %s", ct, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("not JSON: %s", r.body)
	}
	delete(body, "requestId")
	delete(body, "instance")
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAnotherShoppersPaymentLooksLikeNoPayment: probing payment ids as a shopper, an
// existing payment of someone else's and an id that was never issued (or is not even a
// UUID) get the same 404 with the same body, so the answer does not tell whether the id
// exists. The admin's refund of an unknown payment is the same answer too.
func TestAnotherShoppersPaymentLooksLikeNoPayment(t *testing.T) {
	e := newTestEnv(t)
	alices, _ := e.paid(2599)
	before := e.dump()

	probe := func(name, path string, as caller) []byte {
		t.Helper()
		r := e.call(req{method: http.MethodGet, path: path, as: as})
		if r.status != http.StatusNotFound {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		return withoutRequestFields(t, r)
	}
	want := probe("alice's payment, asked by bob", "/api/payments/"+alices, otherShopper)
	for name, got := range map[string][]byte{
		"an unknown id":           probe("an unknown id", "/api/payments/"+uuid.NewString(), otherShopper),
		"an unknown id, as owner": probe("an unknown id, as owner", "/api/payments/"+uuid.NewString(), owner),
		"not a UUID":              probe("not a UUID", "/api/payments/not-a-payment", otherShopper),
	} {
		if !bytes.Equal(got, want) {
			t.Errorf("%s answers\n%s\nbut another shopper's payment answers\n%s", name, got, want)
		}
	}

	refund := e.refund(uuid.NewString(), map[string]any{"amount": 1}, uuid.NewString())
	if refund.status != http.StatusNotFound {
		t.Fatalf("refund of an unknown payment: %d %s", refund.status, refund.body)
	}
	if got := withoutRequestFields(t, refund); !bytes.Equal(got, want) {
		t.Errorf("refund of an unknown payment answers\n%s\nwant\n%s", got, want)
	}
	if e.dump() != before {
		t.Fatal("a refused probe changed the store")
	}
	// The owner still sees it: the refusal above is about bob, not about the payment.
	if r := e.call(req{method: http.MethodGet, path: "/api/payments/" + alices, as: owner}); r.status != http.StatusOK {
		t.Fatalf("the owner reads her payment: %d %s", r.status, r.body)
	}
}
