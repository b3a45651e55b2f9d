package app_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestUpstreamDown: a service that is not there answers 502 problem+json at once, and
// the answer names nothing of the gateway's insides.
func TestUpstreamDown(t *testing.T) {
	addr := closedPort(t)
	h := gateway(t, map[string]string{"GATEWAY_ORDER_URL": "http://" + addr})
	for _, req := range []*http.Request{h.request("GET", "/api/orders", h.shopper), h.request("POST", "/api/orders", h.shopper, "{}")} {
		start := time.Now()
		resp, body := h.do(req)
		elapsed := time.Since(start)
		isProblem(t, resp, body, http.StatusBadGateway)
		if elapsed > time.Second {
			t.Errorf("%s: 502 took %v", req.Method, elapsed)
		}
		if strings.Contains(body, addr) || strings.Contains(body, "refused") {
			t.Errorf("the 502 leaks the upstream: %s", body)
		}
	}
	// The other service is unaffected.
	if resp, _ := h.do(h.request("GET", "/api/payments", h.shopper)); resp.StatusCode != 200 {
		t.Fatalf("payments: %d", resp.StatusCode)
	}
}

// TestUpstreamSlow: a service that does not answer in time gets 504 after the upstream
// timeout, not after the client gives up; a slow first byte and a stalled body alike.
func TestUpstreamSlow(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_UPSTREAM_TIMEOUT": "300ms", "GATEWAY_CONNECT_TIMEOUT": "100ms"})
	release := make(chan struct{})
	defer close(release)
	h.order.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/orders/stall" {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	for _, path := range []string{"/api/orders/slow", "/api/orders/stall"} {
		start := time.Now()
		resp, body := h.do(h.request("GET", path, h.shopper))
		elapsed := time.Since(start)
		isProblem(t, resp, body, http.StatusGatewayTimeout)
		if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
			t.Errorf("%s: 504 after %v; want about the 300ms upstream timeout", path, elapsed)
		}
	}
	// An error status of the upstream itself is its answer, relayed as it is.
	h.order.handle(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":503,"title":"Service Unavailable"}`))
	})
	resp, body := h.do(h.request("GET", "/api/orders", h.shopper))
	isProblem(t, resp, body, http.StatusServiceUnavailable)
}
