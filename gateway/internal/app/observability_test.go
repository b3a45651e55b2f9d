package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAndLogs: metrics are labelled with the gateway's route pattern, never the
// raw path, so ids do not multiply series; access logs carry the request id and subject
// but never a token, good or bad, nor a query string.
func TestMetricsAndLogs(t *testing.T) {
	h := gateway(t, nil)
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		req := h.request("GET", "/api/orders/"+id+"?secret=leak-"+id, h.shopper)
		req.Header.Set("X-Request-Id", "req-"+id)
		if resp, _ := h.do(req); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", id, resp.StatusCode)
		}
	}
	bad := h.iss.Token(t, h.iss.User("mallory-sub", "mallory", "USER").With(map[string]any{"aud": "account"}))
	h.do(h.request("GET", "/api/orders/o-4", bad))
	// Refused with 400, and its query no more logged than an admitted one's.
	h.do(h.request("GET", "/api/orders/o-5?access_token=leak-o-5", ""))
	h.raw("GET /api/%2e%2e/admin HTTP/1.1")

	_, metrics := h.do(h.request("GET", "/metrics", ""))
	if !strings.Contains(metrics, `http_request_duration_seconds_count{method="GET",route="/api/orders/*",service="gateway",status="200"} 3`) {
		t.Errorf("metrics lack the orders route label:\n%s", grep(metrics, "http_request_duration_seconds_count"))
	}
	if strings.Contains(metrics, "o-1") || strings.Contains(metrics, "%2e") {
		t.Errorf("a raw path became a metric label:\n%s", grep(metrics, "http_request_duration_seconds_count"))
	}

	logs := h.logs.String()
	for _, secret := range []string{h.shopper, bad, "leak-o-1", "leak-o-5"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs contain a token or query string:\n%s", logs)
		}
	}
	for _, want := range []string{`"request_id":"req-o-1"`, `"sub":"alice-sub"`, `"route":"/api/orders/*"`, `"path":"/api/orders/o-2"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log lacks %s:\n%s", want, logs)
		}
	}
}

// grep returns the lines of s containing sub.
func grep(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsOnlyForTheScraper: /metrics maps every route of the API, so the gateway's
// public port answers it only to GATEWAY_METRICS_FROM; any other client, with or without
// a token, and whatever X-Forwarded-For it writes, gets the 404 of a route that does not
// exist.
func TestMetricsOnlyForTheScraper(t *testing.T) {
	h := gateway(t, map[string]string{"GATEWAY_METRICS_FROM": "127.0.0.9"})
	if resp, body := h.doFrom("127.0.0.9", h.request("GET", "/metrics", "")); resp.StatusCode != 200 ||
		!strings.Contains(body, "go_goroutines") {
		t.Fatalf("the scraper: %d", resp.StatusCode)
	}
	for name, req := range map[string]*http.Request{
		"anonymous":     h.request("GET", "/metrics", ""),
		"with a token":  h.request("GET", "/metrics", h.shopper),
		"forged XFF":    withHeader(h.request("GET", "/metrics", ""), "X-Forwarded-For", "127.0.0.9"),
		"admin's token": h.request("GET", "/metrics", h.admin),
	} {
		resp, body := h.doFrom("127.0.0.2", req)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
			t.Errorf("%s from another client: %d, want 404 without metrics", name, resp.StatusCode)
		}
	}
}

func withHeader(r *http.Request, k, v string) *http.Request { r.Header.Set(k, v); return r }
