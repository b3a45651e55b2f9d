package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/processor"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
)

func ids(t *testing.T, r response) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out []string
	for _, p := range r.list(t) {
		out = append(out, p["id"].(string))
	}
	return out
}

// TestListsShowOnlyWhatTheCallerMaySee: "my payments" is filtered by owner in the query;
// the admin list filters by order and status, and every filter is validated.
func TestListsShowOnlyWhatTheCallerMaySee(t *testing.T) {
	e := newTestEnv(t)
	a1, _ := e.paid(100)
	a2, a2order := e.paid(200)
	bobsOrder := e.orders.add(bobSub, "pending", 300)
	b1 := e.charge(otherShopper, bobsOrder, processor.CardDeclined, uuid.NewString()).json(t)["paymentId"].(string)

	if got := ids(t, e.call(req{method: "GET", path: "/api/payments", as: owner})); strings.Join(got, ",") != a2+","+a1 {
		t.Fatalf("alice's payments, newest first: %v", got)
	}
	if got := ids(t, e.call(req{method: "GET", path: "/api/payments", as: otherShopper})); strings.Join(got, ",") != b1 {
		t.Fatalf("bob's payments: %v", got)
	}
	if got := ids(t, e.call(req{method: "GET", path: "/api/payments?limit=1&offset=1", as: owner})); strings.Join(got, ",") != a1 {
		t.Fatalf("second page of one: %v", got)
	}
	for query, want := range map[string]string{
		"":                             b1 + "," + a2 + "," + a1,
		"?orderId=" + a2order:          a2,
		"?status=declined":             b1,
		"?status=approved&limit=1":     a2,
		"?orderId=" + uuid.NewString(): "",
	} {
		if got := ids(t, e.call(req{method: "GET", path: "/api/payments/admin/all" + query, as: admin})); strings.Join(got, ",") != want {
			t.Errorf("admin list %q: %v, want %v", query, got, want)
		}
	}
	for _, bad := range []struct{ path, field string }{
		{"/api/payments/admin/all?status=paid", "status"},
		{"/api/payments/admin/all?orderId=1%20OR%201=1", "orderId"},
		{"/api/payments?limit=0", "limit"},
		{"/api/payments?limit=201", "limit"},
		{"/api/payments?limit=ten", "limit"},
		{"/api/payments?offset=-1", "offset"},
		{"/api/payments/admin/audit?limit=1000", "limit"},
	} {
		as := admin
		r := e.call(req{method: "GET", path: bad.path, as: as})
		if r.status != 422 {
			t.Errorf("%s: %d %s", bad.path, r.status, r.body)
			continue
		}
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != bad.field {
			t.Errorf("%s: %+v", bad.path, p.Errors)
		}
	}
}

// TestOversizedBodyOverTheWire announces a body over the limit to a real listener: the
// server answers 413 as problem+json from the headers alone, before reading the body or
// running a handler. (Sent by hand: a client still writing the body would see the
// connection reset instead of the answer.)
func TestOversizedBodyOverTheWire(t *testing.T) {
	e := newTestEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, e.app, ln) }()
	defer func() { cancel(); <-served }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /api/payments HTTP/1.1\r\nHost: payment\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nIdempotency-Key: big\r\nContent-Length: %d\r\n\r\n{\"orderId\":\"",
		e.tokens[owner], 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != problem.ContentType {
		t.Fatalf("status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if e.proc.calls.Load() != 0 || len(e.orders.reads()) != 0 {
		t.Fatal("an oversized request was processed")
	}
}
