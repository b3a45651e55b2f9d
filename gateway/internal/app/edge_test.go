package app_test

import (
	"net/http"
	"strings"
	"testing"

	"example.com/shop/gateway/internal/edge"
	"example.com/shop/gateway/internal/route"
	"example.com/shop/platform/config"
)

func checkSecurityHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":              "no-referrer",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if s := resp.Header.Get("Server"); s != "" {
		t.Errorf("%s: Server header %q", what, s)
	}
}

// TestSecurityHeadersOnEveryResponse covers answers from every layer: proxied ones, the
// gateway's refusals, the platform's probes, and what fasthttp writes before any
// middleware runs (oversized headers, unknown methods).
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_BODY_LIMIT": "64", "GATEWAY_RATE": "0.01", "GATEWAY_BURST": "1"})
	h.order.handle(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Server", "order"); w.WriteHeader(200) })
	send := func(r *http.Request) *http.Response { resp, _ := h.do(r); return resp }
	raw := func(head string, body ...string) *http.Response { resp, _ := h.raw(head, body...); return resp }
	cases := []struct {
		name string
		send func() *http.Response
		want int
	}{
		{"proxied", func() *http.Response { return send(h.request("GET", "/api/public/products", "")) }, 200},
		{"unknown route", func() *http.Response { return send(h.request("GET", "/api/nothing", "")) }, 404},
		{"non-canonical", func() *http.Response { return raw("GET /api/%2e%2e/x HTTP/1.1") }, 400},
		{"no token", func() *http.Response { return send(h.request("GET", "/api/orders", "")) }, 401},
		{"not admin", func() *http.Response { return send(h.request("GET", "/api/admin/products", h.shopper2)) }, 403},
		{"TRACE", func() *http.Response { return raw("TRACE /api/public/products HTTP/1.1") }, 405},
		{"unknown method", func() *http.Response { return raw("PROPFIND /api/public/products HTTP/1.1") }, 405},
		{"body over the route limit", func() *http.Response {
			return send(h.request("POST", "/api/orders", h.shopper, strings.Repeat("x", 100)))
		}, 413},
		{"body over the socket limit", func() *http.Response { return raw("POST /api/orders HTTP/1.1\r\nContent-Length: 100000", "") }, 413},
		{"headers over the socket limit", func() *http.Response {
			return raw("GET /api/orders HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 20000))
		}, 431},
		{"rate limited", func() *http.Response {
			send(h.request("GET", "/api/orders", h.admin))
			return send(h.request("GET", "/api/orders", h.admin))
		}, 429},
		{"healthz", func() *http.Response { return send(h.request("GET", "/healthz", "")) }, 200},
		{"metrics", func() *http.Response { return send(h.request("GET", "/metrics", "")) }, 200},
	}
	for _, tc := range cases {
		resp := tc.send()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		checkSecurityHeaders(t, tc.name, resp)
	}
}

// TestMethods: TRACE and CONNECT, and methods nobody routes, are refused with 405 and an
// Allow header; OPTIONS is only a CORS preflight.
func TestMethods(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_CORS_ORIGINS": "https://shop.example"})
	for _, line := range []string{
		"TRACE /api/public/products HTTP/1.1",
		"TRACE /api/orders HTTP/1.1" + bearer(h.shopper),
		"CONNECT /api/orders HTTP/1.1" + bearer(h.shopper),
		"CONNECT example.com:443 HTTP/1.1",
		"PROPFIND /api/orders HTTP/1.1" + bearer(h.shopper),
		"OPTIONS /api/orders HTTP/1.1" + bearer(h.shopper),
	} {
		resp, body := h.raw(line)
		isProblem(t, resp, body, http.StatusMethodNotAllowed)
		if allow := resp.Header.Get("Allow"); allow == "" || strings.Contains(allow, "TRACE") || strings.Contains(allow, "CONNECT") {
			t.Errorf("%s: Allow %q", firstLine(line), allow)
		}
		if strings.Contains(body, h.shopper) {
			t.Errorf("%s: the answer echoes the token", firstLine(line))
		}
	}
	if h.upstreamHits() != 0 {
		t.Fatal("a refused method reached an upstream")
	}
}

// TestIPRules: the global deny list and the admin allowlist, and that neither can be
// talked around with X-Forwarded-For. 127.0.0.x addresses play distinct clients; .2 is a
// trusted proxy.
func TestIPRules(t *testing.T) {
	h := gateway(t, map[string]string{
		"GATEWAY_DENY":            "127.0.0.66",
		"GATEWAY_ADMIN_ALLOW":     "127.0.0.5/32",
		"GATEWAY_TRUSTED_PROXIES": "127.0.0.2",
	})
	withXFF := func(method, path, token, xff string) *http.Request {
		req := h.request(method, path, token)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return req
	}
	cases := []struct {
		name, from, path, token, xff string
		want                         int
	}{
		{"admin from the allowlisted network", "127.0.0.5", "/api/admin/products", h.admin, "", 200},
		{"admin from elsewhere", "127.0.0.1", "/api/admin/products", h.admin, "", 403},
		{"admin path on another route from elsewhere", "127.0.0.1", "/api/orders/admin/all", h.admin, "", 403},
		{"non-admin path from elsewhere", "127.0.0.1", "/api/orders", h.admin, "", 200},
		{"spoofed XFF naming the allowlisted address", "127.0.0.1", "/api/admin/products", h.admin, "127.0.0.5", 403},
		{"client behind the trusted proxy, allowlisted", "127.0.0.2", "/api/admin/products", h.admin, "127.0.0.5", 200},
		{"client behind the trusted proxy prepends the allowlisted address", "127.0.0.2", "/api/admin/products", h.admin, "127.0.0.5, 198.51.100.7", 403},
		{"denied address", "127.0.0.66", "/api/public/products", "", "", 403},
		{"denied address claims another", "127.0.0.66", "/api/public/products", "", "198.51.100.7", 403},
		{"denied client behind the trusted proxy", "127.0.0.2", "/api/public/products", "", "127.0.0.66", 403},
		{"denied address with an admin token", "127.0.0.66", "/api/orders", h.admin, "", 403},
	}
	for _, tc := range cases {
		before := h.upstreamHits()
		resp, body := h.doFrom(tc.from, withXFF("GET", tc.path, tc.token, tc.xff))
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.want, body)
			continue
		}
		if tc.want == 403 {
			isProblem(t, resp, body, 403)
			if h.upstreamHits() != before {
				t.Errorf("%s: refused but the upstream was reached", tc.name)
			}
		}
	}
}

// TestCORS: listed origins get CORS headers naming them; null, look-alikes, other
// schemes and ports, and unlisted origins are refused before any upstream, preflight or
// not.
func TestCORS(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_CORS_ORIGINS": "https://shop.example,http://localhost:8080"})
	preflight := func(origin string) (*http.Response, string) {
		req := h.request("OPTIONS", "/api/orders", "")
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		return h.do(req)
	}
	simple := func(origin string) (*http.Response, string) {
		req := h.request("GET", "/api/orders", h.shopper)
		req.Header.Set("Origin", origin)
		return h.do(req)
	}

	resp, _ := preflight("https://shop.example")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight from a listed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed; the API takes bearer tokens, not cookies")
	}
	resp, body := simple("https://shop.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Fatalf("request from a listed origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	reached := h.upstreamHits()

	for _, origin := range []string{
		"null",
		"https://shop.example.evil.com",
		"https://evilshop.example",
		"https://evil.shop.example",
		"http://shop.example",
		"https://shop.example:8443",
		"https://shop.example.",
		"https://unlisted.example",
		"http://localhost:8081",
		"*",
	} {
		for name, send := range map[string]func(string) (*http.Response, string){"preflight": preflight, "request": simple} {
			resp, body := send(origin)
			isProblem(t, resp, body, http.StatusForbidden)
			if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "" {
				t.Errorf("%s from %q: Access-Control-Allow-Origin %q", name, origin, acao)
			}
		}
	}
	if h.upstreamHits() != reached {
		t.Fatal("a request from a refused origin reached the upstream")
	}
	// Origins compare case-insensitively in scheme and host, as browsers send them lower case.
	if resp, _ := simple("HTTPS://SHOP.EXAMPLE"); resp.StatusCode != 200 {
		t.Errorf("upper-case spelling of a listed origin: %d", resp.StatusCode)
	}
	// No Origin at all (servers, curl): CORS does not apply.
	if resp, _ := h.do(h.request("GET", "/api/orders", h.shopper)); resp.StatusCode != 200 {
		t.Errorf("request without Origin: %d", resp.StatusCode)
	}
}

// TestNoCORSOriginsConfigured: with an empty allowlist every browser origin is refused,
// never answered with `*`.
func TestNoCORSOriginsConfigured(t *testing.T) {
	h := gateway(t, nil)
	req := h.request("OPTIONS", "/api/public/products", "")
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, body := h.do(req)
	isProblem(t, resp, body, http.StatusForbidden)
	req = h.request("GET", "/api/public/products", "")
	req.Header.Set("Origin", "https://shop.example")
	resp, body = h.do(req)
	isProblem(t, resp, body, http.StatusForbidden)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || h.upstreamHits() != 0 {
		t.Fatal("an origin got through an empty allowlist")
	}
}

// TestRouteIPRules: a route's own CIDR rules apply to it alone.
func TestRouteIPRules(t *testing.T) {
	routes := route.Table()
	for i := range routes {
		if routes[i].Name == "payments" {
			allow, _ := config.ParsePrefixes([]string{"127.0.0.7"})
			routes[i].IPs = edge.IPRules{Allow: allow}
		}
	}
	h := gateway(t, nil, withRoutes(routes))
	resp, body := h.doFrom("127.0.0.1", h.request("GET", "/api/payments", h.shopper))
	isProblem(t, resp, body, http.StatusForbidden)
	if h.payment.hits.Load() != 0 {
		t.Fatal("a refused address reached the payment service")
	}
	if resp, body := h.doFrom("127.0.0.7", h.request("GET", "/api/payments", h.shopper)); resp.StatusCode != 200 {
		t.Fatalf("allowed address: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.doFrom("127.0.0.1", h.request("GET", "/api/orders", h.shopper)); resp.StatusCode != 200 {
		t.Fatalf("another route was restricted too: %d", resp.StatusCode)
	}
}
