package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"example.com/shop/gateway/internal/app"
	"example.com/shop/gateway/internal/route"
)

// withRoutes replaces the route table.
func withRoutes(routes []route.Route) option {
	return func(_ *harness, o *app.Options) { o.Routes = routes }
}

// TestSizeLimits: bodies over the limit get 413 and headers over it 431, both from the
// route's own limit (checked in middleware) and from the socket-level ceiling (checked by
// fasthttp before any middleware); compressed bodies get 415. None reaches an upstream.
func TestSizeLimits(t *testing.T) {
	routes := route.Table()
	for i := range routes {
		if routes[i].Name == "orders" {
			// A smaller budget than the default, to prove per-route limits.
			routes[i].Limits.BodyBytes = 100
			routes[i].Limits.HeaderBytes = 1500
		}
	}
	h := gateway(t, map[string]string{"GATEWAY_BODY_LIMIT": "1000", "GATEWAY_HEADER_LIMIT": "4096", "GATEWAY_BURST": "100"}, withRoutes(routes))

	ok := []struct {
		name string
		req  *http.Request
	}{
		{"orders body at its limit", h.request("POST", "/api/orders", h.shopper, strings.Repeat("x", 100))},
		{"payments body at the default limit", h.request("POST", "/api/payments", h.shopper, strings.Repeat("x", 1000))},
	}
	for _, tc := range ok {
		if resp, body := h.do(tc.req); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	reached := h.upstreamHits()

	bigHeader := func(path string, n int) *http.Request {
		req := h.request("GET", path, h.shopper)
		req.Header.Set("X-Padding", strings.Repeat("p", n))
		return req
	}
	chunked := h.request("POST", "/api/orders", h.shopper, strings.Repeat("x", 101))
	chunked.ContentLength = -1 // sent chunked: no Content-Length to check up front
	gzipped := h.request("POST", "/api/orders", h.shopper, "\x1f\x8b")
	gzipped.Header.Set("Content-Encoding", "gzip")
	refused := []struct {
		name string
		send func() (*http.Response, string)
		want int
	}{
		{"orders body over its limit", func() (*http.Response, string) {
			return h.do(h.request("POST", "/api/orders", h.shopper, strings.Repeat("x", 101)))
		}, 413},
		{"orders body over its limit, chunked", func() (*http.Response, string) { return h.do(chunked) }, 413},
		{"payments body over the default limit", func() (*http.Response, string) {
			return h.do(h.request("POST", "/api/payments", h.shopper, strings.Repeat("x", 1001)))
		}, 413},
		{"body over the socket ceiling, announced", func() (*http.Response, string) {
			return h.raw("POST /api/payments HTTP/1.1"+bearer(h.shopper)+"\r\nContent-Length: 5000000", "")
		}, 413},
		{"compressed body", func() (*http.Response, string) { return h.do(gzipped) }, 415},
		{"orders headers over its limit", func() (*http.Response, string) { return h.do(bigHeader("/api/orders", 1500)) }, 431},
		{"payments headers over the default limit", func() (*http.Response, string) { return h.do(bigHeader("/api/payments", 4100)) }, 431},
		// Past the socket ceiling the gateway answers before reading the rest, so these go
		// raw: Go's client would report the early close instead of the answer.
		{"headers over the socket ceiling", func() (*http.Response, string) {
			return h.raw("GET /api/payments HTTP/1.1" + bearer(h.shopper) + "\r\nX-Padding: " + strings.Repeat("p", 70000))
		}, 431},
		{"many small headers over the socket ceiling", func() (*http.Response, string) {
			var b strings.Builder
			for i := range 400 {
				fmt.Fprintf(&b, "\r\nX-H%d: 0123456789", i)
			}
			return h.raw("GET /api/payments HTTP/1.1" + bearer(h.shopper) + b.String())
		}, 431},
	}
	for _, tc := range refused {
		resp, body := tc.send()
		isProblem(t, resp, body, tc.want)
	}
	if h.upstreamHits() != reached {
		t.Fatal("an oversized request reached an upstream")
	}
}
