package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestContractRoutesReachTheirService sends every route of the API contract with a token
// that may call it, and checks which service answered and that it received exactly the
// method, path, query and body sent.
func TestContractRoutesReachTheirService(t *testing.T) {
	h := gateway(t, nil)
	cases := []struct {
		method, uri string
		admin       bool
		upstream    *upstream
	}{
		{"GET", "/api/public/products", false, h.order},
		{"GET", "/api/public/products/p-1?expand=stock", false, h.order},
		{"POST", "/api/admin/products", true, h.order},
		{"PUT", "/api/admin/products/p-1", true, h.order},
		{"DELETE", "/api/admin/products/p-1", true, h.order},
		{"POST", "/api/orders", false, h.order},
		{"GET", "/api/orders", false, h.order},
		{"GET", "/api/orders/o-1", false, h.order},
		{"POST", "/api/orders/o-1/cancel", false, h.order},
		{"POST", "/api/orders/o-1/pay", false, h.order},
		{"DELETE", "/api/orders/o-1", false, h.order},
		{"GET", "/api/orders/admin/all?status=paid&customer=alice", true, h.order},
		{"GET", "/api/orders/admin/audit", true, h.order},
		{"POST", "/api/payments", false, h.payment},
		{"GET", "/api/payments", false, h.payment},
		{"GET", "/api/payments/p-1", false, h.payment},
		{"POST", "/api/payments/p-1/refunds", true, h.payment},
		{"GET", "/api/payments/admin/all?orderId=o-1", true, h.payment},
		{"GET", "/api/payments/admin/audit", true, h.payment},
	}
	for _, tc := range cases {
		token := h.shopper
		if tc.admin {
			token = h.admin
		}
		var req *http.Request
		if tc.method == "POST" || tc.method == "PUT" {
			req = h.request(tc.method, tc.uri, token, `{"n":1}`)
		} else {
			req = h.request(tc.method, tc.uri, token)
		}
		before := tc.upstream.hits.Load()
		resp, body := h.do(req)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %d: %s", tc.method, tc.uri, resp.StatusCode, body)
			continue
		}
		var got map[string]string
		_ = json.Unmarshal([]byte(body), &got)
		if got["upstream"] != tc.upstream.name || got["method"] != tc.method || got["uri"] != tc.uri ||
			tc.upstream.hits.Load() != before+1 {
			t.Errorf("%s %s: answered by %v", tc.method, tc.uri, got)
		}
		if tc.method == "POST" || tc.method == "PUT" {
			if _, raw := tc.upstream.lastRequest(t); string(raw) != `{"n":1}` {
				t.Errorf("%s %s: upstream got body %q", tc.method, tc.uri, raw)
			}
		}
	}
}

// TestPolicies is the gateway's policy matrix: for each caller and route, the status and
// whether the upstream was reached.
func TestPolicies(t *testing.T) {
	h := gateway(t, nil)
	service := h.iss.Token(t, h.iss.Service("order-service", "shop-api", "SERVICE"))
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/public/products", "", 200},
		{"GET", "/api/public/products", h.shopper, 200},
		{"HEAD", "/api/public/products", "", 200},
		{"POST", "/api/public/products", h.admin, 405}, // the public catalog is read-only
		{"GET", "/api/public/admin", "", 401},          // an admin segment needs a token anywhere
		{"GET", "/api/public/admin", h.shopper, 403},
		{"GET", "/api/public/admin", h.admin, 200},
		{"GET", "/api/orders", "", 401},
		{"GET", "/api/orders", h.shopper, 200},
		{"GET", "/api/orders", service, 200}, // any valid token; the order service checks USER
		{"GET", "/api/orders/admin/all", h.shopper, 403},
		{"GET", "/api/orders/admin/all", service, 403},
		{"GET", "/api/orders/admin/all", h.admin, 200},
		{"GET", "/api/orders/o-1/admin", h.shopper, 403},
		{"GET", "/api/orders/administrator", h.shopper, 200}, // not an admin segment
		{"POST", "/api/admin/products", "", 401},
		{"POST", "/api/admin/products", h.shopper, 403},
		{"PUT", "/api/admin/products/p-1", h.shopper, 403},
		{"DELETE", "/api/admin/products/p-1", h.shopper, 403},
		{"POST", "/api/admin/products", h.admin, 200},
		{"GET", "/api/payments", "", 401},
		{"GET", "/api/payments/admin/audit", h.shopper, 403},
		{"GET", "/api/payments/admin/audit", h.admin, 200},
		{"GET", "/api/unknown", h.admin, 404},
		{"GET", "/api/ordersx", h.admin, 404},
		{"GET", "/api/admin", h.admin, 404},
		{"GET", "/api/admin/users", h.admin, 404},
		{"GET", "/api", h.admin, 404},
		{"GET", "/", h.admin, 404},
		{"GET", "/internal/anything", h.admin, 404},
	}
	for _, tc := range cases {
		before := h.upstreamHits()
		resp, body := h.do(h.request(tc.method, tc.path, tc.token))
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, body)
			continue
		}
		reached := h.upstreamHits() > before
		if reached != (tc.want == 200) {
			t.Errorf("%s %s: upstream reached = %v with status %d", tc.method, tc.path, reached, tc.want)
		}
		if tc.want != 200 && tc.method != "HEAD" {
			isProblem(t, resp, body, tc.want)
		}
		if tc.method == "HEAD" && resp.ContentLength <= 0 {
			t.Errorf("HEAD %s: Content-Length %d; the upstream's length must be kept", tc.path, resp.ContentLength)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="shop"`) {
			t.Errorf("%s %s: 401 without a Bearer challenge", tc.method, tc.path)
		}
	}
}

// TestPathBypassAttempts sends a shopper's token to admin routes in every spelling that
// some server somewhere would read as the admin route. Each is refused, and no upstream
// sees any of them; an admin's token gets the same answer, so refusal is about the path,
// not the caller.
func TestPathBypassAttempts(t *testing.T) {
	h := gateway(t, nil)
	attempts := []string{
		"/api/public/../admin/products",
		"/api/public/./../admin/products",
		"/api/public/products/../../admin/products",
		"/api/public/%2e%2e/admin/products",
		"/api/public/%2E%2E/admin/products",
		"/api/public/.%2e/admin/products",
		"/api/public/%2e./admin/products",
		"/api/public/..%2fadmin%2fproducts",
		"/api/public%2f..%2fadmin%2fproducts",
		"/api/public/..%2Fadmin/products",
		"/api/public/%252e%252e/admin/products",
		"/api/public/%252e%252e%252fadmin/products",
		"/api/public/..%5cadmin/products",
		"/api/public/..\\admin\\products",
		"/api/public\\..\\admin/products",
		"/api/public/..;/admin/products",
		"/api/public;/../admin/products",
		"/api/admin;x=y/products",
		"/api/admin/products;.css",
		"/api/%61dmin/products",
		"/api/%2561dmin/products",
		"/api/ADMIN/products",
		"/api/Admin/products",
		"/API/admin/products",
		"/api/admin/Products",
		"//api/admin/products",
		"/api//admin/products",
		"/api/admin//products",
		"/api/admin/products/",
		"/api/admin/products/.",
		"/api/admin/products/%2e",
		"/api/admin/products%00",
		"/api/admin/products%20",
		"/api/admin/products%09",
		"/api/%c0%ae%c0%ae/admin/products",
		"/api/orders/%61dmin/all",
		"/api/orders/ADMIN/all",
		"/api/orders/Admin/all",
		"/api/orders/admin/all/",
		"/api/orders/./admin/all",
		"/api/orders/admin%2fall",
		"/api/orders/x/..%2fadmin/all",
		"/api/payments/%2e%2e/orders/admin/all",
		"/api/payments/p-1/refunds/../../admin/all",
	}
	for _, token := range []string{h.shopper, h.admin} {
		for _, path := range attempts {
			resp, body := h.raw("GET " + path + " HTTP/1.1" + bearer(token))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 400: %s", path, resp.StatusCode, body)
				continue
			}
			isProblem(t, resp, body, http.StatusBadRequest)
		}
		// The request target in absolute form is matched on its path all the same.
		resp, body := h.raw("GET http://" + h.addr + "/api/public/../admin/products HTTP/1.1" + bearer(token))
		isProblem(t, resp, body, http.StatusBadRequest)
	}
	// Canonical paths that are admin paths: the shopper is refused by policy, not by
	// spelling; a query string cannot change the path.
	for _, uri := range []string{"/api/orders/admin/all?x=/../../public", "/api/orders/admin/all.json", "/api/public/products/admin"} {
		resp, body := h.raw("GET " + uri + " HTTP/1.1" + bearer(h.shopper))
		isProblem(t, resp, body, http.StatusForbidden)
	}
	if n := h.upstreamHits(); n != 0 {
		h.order.mu.Lock()
		t.Fatalf("upstreams received %d requests: %v", n, h.order.paths)
	}
}
