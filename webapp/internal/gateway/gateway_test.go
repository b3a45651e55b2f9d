package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/shop/webapp/internal/gateway"
)

func serve(t *testing.T, h http.HandlerFunc) *gateway.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := gateway.New(srv.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProblemsBecomeErrors(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/orders/o-422":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"title":"Unprocessable Entity","status":422,"detail":"bad card","errors":[{"field":"card.number","message":"invalid"}]}`))
		case "/api/orders/o-429":
			w.Header().Set("Retry-After", "12")
			w.WriteHeader(429)
		case "/api/orders/o-402":
			w.WriteHeader(402)
			_, _ = w.Write([]byte(`{"status":402,"detail":"declined","reason":"insufficient_funds","paymentId":"p-1"}`))
		case "/api/orders/o-html":
			w.WriteHeader(502)
			_, _ = w.Write([]byte(`<html>proxy error</html>`))
		}
	})
	api := c.As("tok")
	var ge *gateway.Error
	_, err := api.Order(context.Background(), "o-422")
	if !errors.As(err, &ge) || ge.Status != 422 || ge.Detail != "bad card" || len(ge.Fields) != 1 || ge.Fields[0].Field != "card.number" {
		t.Fatalf("422: %#v", err)
	}
	_, err = api.Order(context.Background(), "o-429")
	if !errors.As(err, &ge) || ge.Status != 429 || ge.RetryAfter != 12*time.Second {
		t.Fatalf("429: %#v", err)
	}
	_, err = api.Order(context.Background(), "o-402")
	if !errors.As(err, &ge) || ge.Reason != "insufficient_funds" || ge.PaymentID != "p-1" {
		t.Fatalf("402: %#v", err)
	}
	_, err = api.Order(context.Background(), "o-html")
	if gateway.StatusOf(err) != 502 {
		t.Fatalf("non-JSON 502: %v", err)
	}
}

func TestTransportFailures(t *testing.T) {
	slow := serve(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(1500 * time.Millisecond) })
	if _, err := slow.As("").Products(context.Background()); gateway.StatusOf(err) != http.StatusGatewayTimeout {
		t.Fatalf("slow gateway: %v", err)
	}
	down, _ := gateway.New("http://127.0.0.1:1", time.Second)
	if _, err := down.As("").Products(context.Background()); gateway.StatusOf(err) != http.StatusBadGateway {
		t.Fatalf("no gateway: %v", err)
	}
	if _, err := gateway.New("ftp://x", time.Second); err == nil {
		t.Fatal("accepted a non-http URL")
	}
}

// TestRequests: headers and paths of what the client sends.
func TestRequests(t *testing.T) {
	var got *http.Request
	var body string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[{"id":"o1","status":"paid","total":{"amount":1999,"currency":"EUR"}}]}`))
	})
	ctx := gateway.WithRequestID(context.Background(), "req-1")
	orders, err := c.As("the-token").AllOrders(ctx, gateway.OrderFilter{Status: "paid", Customer: "alice & bob", Number: 10042}, 50, 50)
	if err != nil || len(orders) != 1 || orders[0].Total.Amount != 1999 {
		t.Fatalf("%v %+v", err, orders)
	}
	if got.Header.Get("Authorization") != "Bearer the-token" || got.Header.Get("X-Request-Id") != "req-1" ||
		got.URL.Query().Get("customer") != "alice & bob" || got.URL.Query().Get("status") != "paid" || got.URL.Query().Get("number") != "10042" || got.URL.Query().Get("offset") != "50" {
		t.Fatalf("request %v %v", got.Header, got.URL)
	}
	amount := int64(250)
	_ = c.As("t").Refund(ctx, "../../admin/all", &amount, "key-1")
	if got.URL.EscapedPath() != "/api/payments/..%2F..%2Fadmin%2Fall/refunds" || got.Header.Get("Idempotency-Key") != "key-1" || body != `{"amount":250}` {
		t.Fatalf("refund sent to %q with %q", got.URL.EscapedPath(), body)
	}
	_, _ = c.As("").Products(ctx)
	if got.Header.Get("Authorization") != "" {
		t.Fatal("an anonymous call carried a token")
	}
}

// TestAuditReadsOneServicePage: the client asks the named service's log for a filtered
// page and reads its entries in the contract's shape.
func TestAuditReadsOneServicePage(t *testing.T) {
	var got *http.Request
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = w.Write([]byte(`[{"id":"a1","at":"2026-01-01T11:00:00Z","actor":{"subject":"s-1","username":"ada"},"action":"payment.refund","resource":"payment/pay1","detail":{"amount":500,"currency":"EUR"},"requestId":"r1"}]`))
	})
	entries, err := c.As("t").Audit(context.Background(), gateway.AuditPayment, gateway.AuditQuery{Action: "payment.refund", Actor: "ada", Offset: 20, Limit: 10})
	if err != nil || len(entries) != 1 {
		t.Fatalf("%v %+v", err, entries)
	}
	if got.URL.Path != "/api/payments/admin/audit" || got.URL.RawQuery != "action=payment.refund&actor=ada&limit=10&offset=20" {
		t.Fatalf("asked %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	e := entries[0]
	if e.Source != gateway.AuditPayment || e.Actor.Username != "ada" || e.Action != "payment.refund" || e.Resource != "payment/pay1" ||
		e.Detail["amount"] != 500.0 || !e.At.Equal(time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("entry %+v", e)
	}
	if _, err := c.As("t").Audit(context.Background(), gateway.AuditOrder, gateway.AuditQuery{Limit: 5}); err != nil || got.URL.Path != "/api/orders/admin/audit" || got.URL.RawQuery != "limit=5&offset=0" {
		t.Fatalf("order log asked %s?%s: %v", got.URL.Path, got.URL.RawQuery, err)
	}
}
