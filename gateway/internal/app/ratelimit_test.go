package app_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"example.com/shop/platform/problem"
)

// TestBurstThenRecovery: a caller gets its burst, then 429 with Retry-After and the
// RateLimit fields, and the upstream sees only the admitted requests; after the refill
// interval it gets exactly one more. The rate (one token per 500ms) leaves the test wide
// margins on a busy machine.
func TestBurstThenRecovery(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_RATE": "2", "GATEWAY_BURST": "3"})
	get := func() (*http.Response, string) { return h.do(h.request("GET", "/api/orders", h.shopper)) }
	var emptiedAt time.Time
	for i, wantT := range []int{1, 1, 2} { // seconds until the bucket is full again
		resp, body := get()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, resp.StatusCode, body)
		}
		emptiedAt = time.Now()
		if got, want := resp.Header.Get("RateLimit"), fmt.Sprintf(`"default";r=%d;t=%d`, 2-i, wantT); got != want {
			t.Errorf("request %d: RateLimit %q, want %q", i+1, got, want)
		}
		if got := resp.Header.Get("RateLimit-Policy"); got != `"default";q=3;w=2` {
			t.Errorf("RateLimit-Policy %q", got)
		}
	}
	for range 5 {
		resp, body := get()
		p := isProblem(t, resp, body, http.StatusTooManyRequests)
		if resp.Header.Get("Retry-After") != "1" || p.RetryAfter != 1 ||
			resp.Header.Get("RateLimit") != `"default";r=0;t=2` {
			t.Fatalf("429 headers %v, body %+v", resp.Header, p)
		}
	}
	if n := h.order.hits.Load(); n != 3 {
		t.Fatalf("the upstream saw %d requests, want the 3 admitted", n)
	}
	time.Sleep(time.Until(emptiedAt.Add(550 * time.Millisecond)))
	if resp, body := get(); resp.StatusCode != 200 {
		t.Fatalf("after the refill interval: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("one refill interval bought more than one request: %d", resp.StatusCode)
	}
}

// TestBudgetsAreSeparate: per subject, per anonymous client, and per route policy.
func TestBudgetsAreSeparate(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_RATE": "0.01", "GATEWAY_BURST": "2"})
	drain := func(token, path string) {
		for range 2 {
			if resp, body := h.do(h.request("GET", path, token)); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
		}
		if resp, _ := h.do(h.request("GET", path, token)); resp.StatusCode != 429 {
			t.Fatalf("%s: budget not enforced: %d", path, resp.StatusCode)
		}
	}
	drain(h.shopper, "/api/orders")
	if resp, _ := h.do(h.request("GET", "/api/orders", h.shopper2)); resp.StatusCode != 200 {
		t.Errorf("bob limited by alice's requests: %d", resp.StatusCode)
	}
	if resp, _ := h.do(h.request("GET", "/api/public/products", "")); resp.StatusCode != 200 {
		t.Errorf("anonymous caller limited by alice's requests: %d", resp.StatusCode)
	}
	// Payments have a policy of their own (route.Table): the default budget being spent
	// does not block them.
	resp, _ := h.do(h.request("GET", "/api/payments", h.shopper))
	if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Policy") != `"payments";q=5;w=3` {
		t.Errorf("payments: %d, policy %q", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
}

// TestSpoofedForwardedForBuysNoBudget: an anonymous client rotating X-Forwarded-For is
// still one client, whether it talks to the gateway directly or through a trusted proxy
// (127.0.0.2) that appends its real address.
func TestSpoofedForwardedForBuysNoBudget(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_RATE": "0.01", "GATEWAY_BURST": "3", "GATEWAY_TRUSTED_PROXIES": "127.0.0.2"})
	send := func(from, xff string) int {
		req := h.request("GET", "/api/public/products", "")
		req.Header.Set("X-Forwarded-For", xff)
		resp, _ := h.doFrom(from, req)
		return resp.StatusCode
	}
	for _, via := range []struct{ from, real string }{{"127.0.0.9", ""}, {"127.0.0.2", "203.0.113.50"}} {
		admitted := 0
		for i := range 20 {
			xff := fmt.Sprintf("198.51.100.%d", i)
			if via.real != "" {
				xff += ", " + via.real // the proxy appends what it saw
			}
			if send(via.from, xff) == 200 {
				admitted++
			}
		}
		if admitted != 3 {
			t.Errorf("via %s: %d of 20 requests with rotating X-Forwarded-For admitted, want the burst of 3", via.from, admitted)
		}
	}
	// Distinct clients behind the trusted proxy do get budgets of their own.
	if code := send("127.0.0.2", "203.0.113.51"); code != 200 {
		t.Errorf("another client behind the proxy: %d", code)
	}
}

// TestReplicasShareOneBudget runs two gateways on one Redis: a caller alternating between
// them gets one burst in all, not one per replica.
func TestReplicasShareOneBudget(t *testing.T) {
	mr := miniredis.RunT(t)
	env := map[string]string{"GATEWAY_REDIS_URL": "redis://" + mr.Addr() + "/0", "GATEWAY_RATE": "0.01", "GATEWAY_BURST": "4"}
	a := gateway(t, env)
	b := &harness{t: t, iss: a.iss, order: a.order, payment: a.payment, logs: a.logs}
	b.start(env)
	admitted := 0
	for i := range 12 {
		h := a
		if i%2 == 1 {
			h = b
		}
		resp, body := h.do(h.request("GET", "/api/orders", a.shopper))
		switch resp.StatusCode {
		case 200:
			admitted++
		case 429:
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("429 without Retry-After: %v", resp.Header)
			}
			if resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("429 is not problem+json: %s", body)
			}
		default:
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	if admitted != 4 {
		t.Fatalf("two replicas admitted %d requests; the shared burst is 4", admitted)
	}
	if a.order.hits.Load() != 4 {
		t.Fatalf("the upstream saw %d requests", a.order.hits.Load())
	}
}
