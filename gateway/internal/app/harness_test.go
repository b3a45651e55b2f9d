package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"

	"example.com/shop/gateway/internal/app"
)

// upstream is a fake service behind the gateway. It counts what reaches it and keeps the
// last request, so every refusal test can prove the upstream saw nothing.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64

	mu      sync.Mutex
	last    *http.Request
	lastRaw []byte
	paths   []string
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.lastRaw = body
		u.paths = append(u.paths, r.Method+" "+r.URL.RequestURI())
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"upstream": name, "method": r.Method, "uri": r.URL.RequestURI()})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) handle(h http.HandlerFunc) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// lastRequest returns the last request the upstream received.
func (u *upstream) lastRequest(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		t.Fatalf("%s upstream received nothing", u.name)
	}
	return u.last, u.lastRaw
}

// harness is a running gateway with a fake Keycloak realm and fake order and payment
// services.
type harness struct {
	t              *testing.T
	iss            *testkit.Issuer
	order, payment *upstream
	gw             *app.Gateway
	addr           string
	logs           *testkit.Logs
	shopper, admin string
	shopper2       string
}

// gateway starts a gateway on a loopback port. env adds to or overrides the variables a
// test gateway starts with; opts adjust the Options.
func gateway(t *testing.T, env map[string]string, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, iss: testkit.NewIssuer(t), order: newUpstream(t, "order"), payment: newUpstream(t, "payment"), logs: &testkit.Logs{}}
	return h.start(env, opts...)
}

// option adjusts a test gateway's Options.
type option func(h *harness, o *app.Options)

// fastKeyRefresh gives the gateway a verifier that may refetch the realm's keys every
// millisecond (at most every 10s in production), for tests of key rotation.
func fastKeyRefresh(h *harness, o *app.Options) {
	v, err := authn.NewVerifier(authn.Config{Issuer: h.iss.URL, Audience: testkit.Audience, MinKeyRefresh: time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	o.Verifier = v
}

func (h *harness) start(env map[string]string, opts ...option) *harness {
	t := h.t
	t.Helper()
	vars := map[string]string{
		"OIDC_ISSUER":         h.iss.URL,
		"GATEWAY_ORDER_URL":   h.order.URL,
		"GATEWAY_PAYMENT_URL": h.payment.URL,
		// The fake realm's tokens name azp webapp and are bearer tokens, as every test
		// before token binding expects; the DPoP tests (dpop_test.go) set the list.
		"GATEWAY_DPOP_CLIENTS": "no-such-client",
	}
	maps.Copy(vars, env)
	var cfg app.Config
	if err := config.Load(func(k string) string { return vars[k] }, &cfg); err != nil {
		t.Fatal(err)
	}
	o := app.Options{Logger: slog.New(slog.NewJSONHandler(h.logs, nil))}
	for _, f := range opts {
		f(h, &o)
	}
	gw, err := app.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, gw.App, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = gw.Close()
	})
	h.gw, h.addr = gw, ln.Addr().String()
	h.shopper = h.iss.Token(t, h.iss.User("alice-sub", "alice", "USER"))
	h.shopper2 = h.iss.Token(t, h.iss.User("bob-sub", "bob", "USER"))
	h.admin = h.iss.Token(t, h.iss.User("ada-sub", "ada", "USER", "ADMIN").With(testkit.Claims{"scope": "openid admin:read"}))
	return h
}

// upstreamHits is what both fake services have received.
func (h *harness) upstreamHits() int64 { return h.order.hits.Load() + h.payment.hits.Load() }

// request builds a request to the gateway; token "" sends none.
func (h *harness) request(method, path, token string, body ...string) *http.Request {
	var r io.Reader
	if len(body) > 0 {
		r = strings.NewReader(body[0])
	}
	req, err := http.NewRequest(method, "http://"+h.addr+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// do sends req from 127.0.0.1.
func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	return h.doFrom("127.0.0.1", req)
}

// doFrom sends req from a chosen loopback address, so a test can play several clients
// or a trusted proxy (all of 127.0.0.0/8 is this machine).
func (h *harness) doFrom(ip string, req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := clientFrom(ip).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*http.Client{}
)

func clientFrom(ip string) *http.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[ip]; ok {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c := &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, DisableCompression: true},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	clients[ip] = c
	return c
}

// raw sends bytes exactly as given (a request line and headers, "\r\n"-separated, then an
// optional body) and reads one response: the way to send paths and headers that Go's
// client would correct.
func (h *harness) raw(head string, body ...string) (*http.Response, string) {
	h.t.Helper()
	return h.rawFrom("127.0.0.1", head, body...)
}

func (h *harness) rawFrom(ip, head string, body ...string) (*http.Response, string) {
	h.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	conn, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	msg := head
	if !strings.Contains(head, "\r\nHost:") {
		msg += "\r\nHost: " + h.addr
	}
	msg += "\r\nConnection: close\r\n\r\n"
	if len(body) > 0 {
		msg += body[0]
	}
	// A write error is not fatal by itself: the gateway may answer (413, 431) and close
	// before it has read everything; the answer is what the test is after.
	_, werr := io.WriteString(conn, msg)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("%q: %v (write: %v)", firstLine(head), err, werr)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// isProblem checks that an answer is RFC 9457 problem+json with the given status.
func isProblem(t *testing.T, resp *http.Response, body string, status int) problem.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("content type %q, want %s: %s", ct, problem.ContentType, body)
	}
	var p problem.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != status {
		t.Fatalf("not a problem document for %d: %s", status, body)
	}
	return p
}

// bearer is an Authorization header line for raw requests.
func bearer(token string) string { return "\r\nAuthorization: Bearer " + token }
