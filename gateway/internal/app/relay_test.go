package app_test

import (
	"net/http"
	"strings"
	"testing"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestTokenRelayAndRequestHygiene sends a request loaded with headers a client must not
// get past the gateway, and checks what the upstream received: the same Authorization,
// the gateway's own forwarding headers and request id, trace context, the API's headers,
// and none of the rest.
func TestTokenRelayAndRequestHygiene(t *testing.T) {
	h := gateway(t, nil)
	head := "POST /api/orders?x=1 HTTP/1.1" + bearer(h.shopper) +
		"\r\nContent-Type: application/json" +
		"\r\nContent-Length: 9" +
		"\r\nIdempotency-Key: key-1" +
		"\r\nAccept: application/json" +
		"\r\nX-Request-Id: client-req-1" +
		"\r\nTraceparent: " + traceparent +
		"\r\nTracestate: vendor=1" +
		"\r\nX-User-Id: ada-sub" +
		"\r\nX-User-Roles: ADMIN" +
		"\r\nX-Roles: ADMIN" +
		"\r\nX-Auth-Request-User: ada" +
		"\r\nX-Forwarded-For: 10.0.0.1" +
		"\r\nX-Forwarded-Proto: https" +
		"\r\nX-Forwarded-Host: admin.internal" +
		"\r\nX-Forwarded-Port: 443" +
		"\r\nForwarded: for=10.0.0.1;proto=https" +
		"\r\nX-Real-Ip: 10.0.0.1" +
		"\r\nTrue-Client-Ip: 10.0.0.1" +
		"\r\nX-Original-Url: /api/admin/products" +
		"\r\nX-Rewrite-Url: /api/admin/products" +
		"\r\nX-Http-Method-Override: DELETE" +
		"\r\nCookie: session=stolen" +
		"\r\nProxy-Authorization: Basic c2VjcmV0" +
		"\r\nProxy-Connection: keep-alive" +
		"\r\nKeep-Alive: timeout=5" +
		"\r\nTE: trailers" +
		"\r\nUpgrade: websocket" +
		"\r\nX-Hop-Secret: only-for-the-next-hop" +
		"\r\nConnection: X-Hop-Secret"
	resp, body := h.raw(head, `{"a":"b"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got, raw := h.order.lastRequest(t)
	if string(raw) != `{"a":"b"}` || got.URL.RequestURI() != "/api/orders?x=1" || got.Method != "POST" {
		t.Fatalf("upstream got %s %s %q", got.Method, got.URL.RequestURI(), raw)
	}
	want := map[string]string{
		"Authorization":     "Bearer " + h.shopper, // token relay: unchanged
		"Content-Type":      "application/json",
		"Idempotency-Key":   "key-1",
		"Accept":            "application/json",
		"X-Request-Id":      "client-req-1",
		"Traceparent":       traceparent,
		"Tracestate":        "vendor=1",
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  h.addr,
	}
	for k, v := range want {
		if got.Header.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, got.Header.Get(k), v)
		}
	}
	for _, k := range []string{"X-User-Id", "X-User-Roles", "X-Roles", "X-Auth-Request-User", "X-Forwarded-Port",
		"Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override",
		"Cookie", "Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "Te", "Upgrade", "X-Hop-Secret", "Transfer-Encoding"} {
		if v, ok := got.Header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if len(got.Header.Values("X-Forwarded-For")) != 1 {
		t.Errorf("X-Forwarded-For sent %d times", len(got.Header.Values("X-Forwarded-For")))
	}
	if got.Host != strings.TrimPrefix(h.order.URL, "http://") {
		t.Errorf("upstream Host %q, want the upstream's own", got.Host)
	}
}

func TestRequestIDAndTraceContext(t *testing.T) {
	h := gateway(t, nil)
	// Without a client id the gateway makes one, sends it upstream and answers with it.
	resp, _ := h.do(h.request("GET", "/api/public/products", ""))
	got, _ := h.order.lastRequest(t)
	if id := got.Header.Get("X-Request-Id"); id == "" || id != resp.Header.Get("X-Request-Id") {
		t.Fatalf("request id upstream %q, in the answer %q", id, resp.Header.Get("X-Request-Id"))
	}
	// A malformed id or trace context is replaced or dropped, never passed on.
	req := h.request("GET", "/api/public/products", "")
	req.Header.Set("X-Request-Id", "evil\"id with spaces")
	req.Header.Set("Traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	req.Header.Set("Tracestate", "vendor=1")
	h.do(req)
	got, _ = h.order.lastRequest(t)
	if id := got.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, "evil") {
		t.Errorf("upstream request id %q", id)
	}
	if got.Header.Get("Traceparent") != "" || got.Header.Get("Tracestate") != "" {
		t.Errorf("an invalid trace context was passed on: %q %q", got.Header.Get("Traceparent"), got.Header.Get("Tracestate"))
	}
}

// TestForwardingHeadersFromTrustedProxyOnly: X-Forwarded-* is believed from a trusted
// proxy (here 127.0.0.2) and from nobody else (127.0.0.3).
func TestForwardingHeadersFromTrustedProxyOnly(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_TRUSTED_PROXIES": "127.0.0.2/32"})
	send := func(from string) (*http.Response, *http.Request) {
		req := h.request("GET", "/api/public/products", "")
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "shop.example")
		resp, body := h.doFrom(from, req)
		if resp.StatusCode != 200 {
			t.Fatalf("from %s: %d %s", from, resp.StatusCode, body)
		}
		got, _ := h.order.lastRequest(t)
		return resp, got
	}
	resp, got := send("127.0.0.2")
	if got.Header.Get("X-Forwarded-For") != "203.0.113.9, 127.0.0.2" || got.Header.Get("X-Forwarded-Proto") != "https" ||
		got.Header.Get("X-Forwarded-Host") != "shop.example" {
		t.Errorf("through the trusted proxy, upstream got %v", got.Header)
	}
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Error("no HSTS on an answer the client received over https")
	}
	resp, got = send("127.0.0.3")
	if got.Header.Get("X-Forwarded-For") != "127.0.0.3" || got.Header.Get("X-Forwarded-Proto") != "http" ||
		got.Header.Get("X-Forwarded-Host") != h.addr {
		t.Errorf("from an untrusted peer, upstream got %v", got.Header)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent because an untrusted client claimed https")
	}
}

// TestResponseHygiene: what an upstream answers reaches the client without its hop-by-hop
// headers, its software banner, or any say over CORS and the security headers.
func TestResponseHygiene(t *testing.T) {
	h := gateway(t, nil)
	h.order.handle(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "order/1.0 (Fiber)")
		w.Header().Set("X-Powered-By", "Go")
		w.Header().Set("Connection", "X-Internal-Secret")
		w.Header().Set("X-Internal-Secret", "42")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.Header().Set("Content-Security-Policy", "default-src *")
		w.Header().Set("RateLimit", `"default";r=999;t=0`)
		w.Header().Set("Location", "/api/orders/o-1")
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Add("Vary", "Accept")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"status":409}`))
	})
	resp, body := h.do(h.request("POST", "/api/orders", h.shopper, "{}"))
	if resp.StatusCode != http.StatusConflict || body != `{"status":409}` ||
		resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Location") != "/api/orders/o-1" {
		t.Fatalf("the upstream's answer was not relayed: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, k := range []string{"Server", "X-Powered-By", "X-Internal-Secret", "Keep-Alive", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client received the upstream's %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("the upstream weakened the security headers: %v", resp.Header)
	}
	if !strings.Contains(resp.Header.Get("RateLimit"), "r=") || strings.Contains(resp.Header.Get("RateLimit"), "999") {
		t.Errorf("RateLimit %q is not the gateway's", resp.Header.Get("RateLimit"))
	}
}

// TestRequestSmugglingFramesAreNotForwarded: a request whose framing is ambiguous
// (Content-Length and chunked at once) never passes its second, hidden request on; the
// gateway either refuses it or forwards one request framed by itself.
func TestRequestSmugglingFramesAreNotForwarded(t *testing.T) {
	h := gateway(t, nil)
	smuggled := "GET /api/admin/products HTTP/1.1\r\nHost: x\r\n\r\n"
	body := "0\r\n\r\n" + smuggled
	resp, _ := h.raw("POST /api/public/products HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked", body)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp, _ = h.raw("POST /api/orders HTTP/1.1"+bearer(h.shopper)+"\r\nContent-Length: 4\r\nTransfer-Encoding: chunked", body)
	h.order.mu.Lock()
	defer h.order.mu.Unlock()
	for _, p := range h.order.paths {
		if strings.Contains(p, "admin") {
			t.Fatalf("a smuggled request reached the upstream: %v (status %d)", h.order.paths, resp.StatusCode)
		}
	}
	if len(h.order.paths) > 1 {
		t.Fatalf("one client request became %d upstream requests: %v", len(h.order.paths), h.order.paths)
	}
}
