package payment_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"example.com/shop/order/internal/payment"
)

const orderID = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d99"

// lookupAnswering returns a Lookup of an internal listener that answers status and body,
// and records the query it was asked.
func lookupAnswering(t *testing.T, status int, body string) (*payment.Lookup, *atomic.Value) {
	t.Helper()
	var query atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query.Store(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	l, err := payment.NewLookup(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return l, &query
}

func TestLookupReadsTheOrdersPayments(t *testing.T) {
	l, query := lookupAnswering(t, 200, `[{"id":"p2","orderId":"`+orderID+`","amount":{"amount":2580,"currency":"EUR"},"status":"approved"},`+
		`{"id":"p1","orderId":"`+orderID+`","amount":{"amount":2580,"currency":"EUR"},"status":"declined","cardLast4":"0002"}]`)
	ps, err := l.PaymentsOf(t.Context(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	if query.Load() != "GET /internal/payments?orderId="+orderID {
		t.Fatalf("asked %v", query.Load())
	}
	want := []payment.Payment{
		{ID: "p2", OrderID: orderID, Amount: payment.Money{Amount: 2580, Currency: "EUR"}, Status: "approved"},
		{ID: "p1", OrderID: orderID, Amount: payment.Money{Amount: 2580, Currency: "EUR"}, Status: "declined"},
	}
	if len(ps) != 2 || ps[0] != want[0] || ps[1] != want[1] {
		t.Fatalf("payments %+v", ps)
	}
	l, _ = lookupAnswering(t, 200, `[]`)
	if ps, err := l.PaymentsOf(t.Context(), orderID); err != nil || len(ps) != 0 {
		t.Fatalf("no payments: %+v %v", ps, err)
	}
}

// TestLookupNeverGuesses: an answer that is not a clean list of this order's payments is
// an error, never an empty list (which would close the attempt) nor someone else's payment
// (which could pay the order).
func TestLookupNeverGuesses(t *testing.T) {
	for name, tc := range map[string]struct {
		status int
		body   string
	}{
		"another order's payment":  {200, `[{"id":"p1","orderId":"0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d01","status":"approved"}]`},
		"a payment without id":     {200, `[{"orderId":"` + orderID + `","status":"approved"}]`},
		"a payment without status": {200, `[{"id":"p1","orderId":"` + orderID + `"}]`},
		"not JSON":                 {200, `<html>`},
		"forbidden":                {403, `{"title":"Forbidden"}`},
		"unauthorized":             {401, ``},
		"a server error":           {500, ``},
		"a redirect":               {307, ``},
	} {
		l, _ := lookupAnswering(t, tc.status, tc.body)
		if ps, err := l.PaymentsOf(t.Context(), orderID); !errors.Is(err, payment.ErrUpstream) {
			t.Errorf("%s: %+v %v, want ErrUpstream", name, ps, err)
		}
	}
}

func TestLookupWantsHTTPS(t *testing.T) {
	for _, u := range []string{"http://payment:8443", "payment:8443", ""} {
		if _, err := payment.NewLookup(u, http.DefaultClient); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
