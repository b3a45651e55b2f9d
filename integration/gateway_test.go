package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// TestGatewayRateLimitBurstAndRecovery: a burst over the payments route's budget gets 429
// with Retry-After and RateLimit headers, and the same caller is served again after waiting
// that long. The budget lives in Redis, shared by gateway replicas.
func TestGatewayRateLimitBurstAndRecovery(t *testing.T) {
	token := apiToken(t, harness.Bob)
	var limited *http.Response
	for i := 0; i < 40 && limited == nil; i++ { // bounded: the route's burst is far below 40
		req, _ := http.NewRequest(http.MethodGet, shop.GatewayURL+"/api/payments", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited = resp
		default:
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if limited == nil {
		t.Fatal("40 requests at once were never limited")
	}
	wait, err := strconv.Atoi(limited.Header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 60 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	if limited.Header.Get("RateLimit-Policy") == "" && limited.Header.Get("RateLimit") == "" {
		t.Fatalf("429 without RateLimit headers: %v", limited.Header)
	}
	time.Sleep(time.Duration(wait)*time.Second + 200*time.Millisecond)
	if st := apiGet(t, token, "/api/payments", nil); st != http.StatusOK {
		t.Fatalf("after waiting Retry-After: %d, want 200", st)
	}
}

// TestGatewayRefusesOversizedBody: a body over the limit gets 413 before any service sees
// it; the shopper's orders are unchanged.
//
// The request announces a 2 MiB body and sends only its headers. The gateway refuses it on
// the Content-Length alone and closes the connection; a client that had already pushed the
// body would race that close (its unread bytes make the kernel answer with a reset that can
// discard the 413), which is why this test does not use net/http's client here.
func TestGatewayRefusesOversizedBody(t *testing.T) {
	token := apiToken(t, harness.Bob)
	var before []order
	if st := apiGet(t, token, "/api/orders?limit=200", &before); st != http.StatusOK {
		t.Fatalf("listing orders: %d", st)
	}

	u, err := url.Parse(shop.GatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /api/orders HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.Host, token, 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to a 2 MiB body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB body: %d, want 413", resp.StatusCode)
	}

	var after []order
	if st := apiGet(t, token, "/api/orders?limit=200", &after); st != http.StatusOK {
		t.Fatalf("listing orders: %d", st)
	}
	if len(after) != len(before) {
		t.Fatalf("orders went from %d to %d", len(before), len(after))
	}
}
