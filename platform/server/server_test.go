package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"
)

func TestAppProbesLogsAndPanics(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	iss := testkit.NewIssuer(t)
	v, _ := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	dbDown := errors.New("db down")
	var ready error
	app := server.New(server.Options{Name: "test", Logger: log, Ready: map[string]server.Check{
		"db": func(context.Context) error { return ready },
	},
		// app.Test's connections come from 0.0.0.0: let that address scrape here.
		MetricsFrom: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")},
	})
	app.Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })
	app.Get("/me", v.Middleware(log), func(c *fiber.Ctx) error { return c.SendString("hi") })

	get := func(path string, hdr ...string) *http.Response {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := get("/healthz"); r.StatusCode != 200 {
		t.Fatalf("healthz %d", r.StatusCode)
	}
	if r := get("/readyz"); r.StatusCode != 200 {
		t.Fatalf("readyz %d", r.StatusCode)
	}
	ready = dbDown
	if r := get("/readyz"); r.StatusCode != 503 {
		t.Fatalf("readyz with db down %d", r.StatusCode)
	}
	r := get("/boom")
	if r.StatusCode != 500 || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("panic answered %d, request id %q", r.StatusCode, r.Header.Get("X-Request-Id"))
	}
	body, _ := io.ReadAll(r.Body)
	if strings.Contains(string(body), "kaboom") || strings.Contains(string(body), "goroutine") {
		t.Fatalf("panic leaked: %s", body)
	}
	token := iss.Token(t, iss.User("sub-42", "alice", "USER"))
	if r := get("/me", "Authorization", "Bearer "+token, "X-Request-Id", "abc-123"); r.StatusCode != 200 || r.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("/me %d id %q", r.StatusCode, r.Header.Get("X-Request-Id"))
	}
	// A token in the query is refused (RFC 6750 allows one method per request), and never logged.
	if r := get("/me?access_token="+token, "Authorization", "Bearer "+token); r.StatusCode != 400 {
		t.Fatalf("/me with a query token too: %d, want 400", r.StatusCode)
	}
	if r := get("/me", "X-Request-Id", "evil\"id with spaces"); r.Header.Get("X-Request-Id") == "evil\"id with spaces" {
		t.Fatal("an unsafe client request id was echoed")
	}
	out := logs.String()
	if strings.Contains(out, token) {
		t.Fatal("a token reached the logs")
	}
	if !strings.Contains(out, `"sub":"sub-42"`) || !strings.Contains(out, `"request_id":"abc-123"`) || !strings.Contains(out, "kaboom") {
		t.Fatalf("access log lacks subject, request id or panic:\n%s", out)
	}
	m := get("/metrics")
	mb, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(mb), `http_request_duration_seconds_count{method="GET",route="/me",service="test",status="200"}`) {
		t.Fatalf("metrics lack the /me route:\n%s", mb)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	app := server.New(server.Options{Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	release := make(chan struct{})
	app.Get("/slow", func(c *fiber.Ctx) error { <-release; return c.SendString("done") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, app, ln) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel() // SIGTERM
	time.Sleep(50 * time.Millisecond)
	close(release)
	if s := <-got; s != "done" {
		t.Fatalf("in-flight request got %q", s)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestProbe(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if code := server.Probe(addr); code != 0 {
		t.Fatalf("ready service: exit %d", code)
	}
	ready = false
	if code := server.Probe(addr); code != 1 {
		t.Fatalf("unready service: exit %d", code)
	}
	srv.Close()
	if code := server.Probe(addr); code != 1 {
		t.Fatalf("stopped service: exit %d", code)
	}
}

// TestServeReturnsWhenCancelledBeforeStart: a context cancelled before Fiber serves must
// still end Serve.
func TestServeReturnsWhenCancelledBeforeStart(t *testing.T) {
	app := server.New(server.Options{Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, app, ln) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled before start")
	}
}

// TestMetricsOnlyForScrapers: /metrics answers the configured networks (loopback when none
// is configured) and is a plain 404 to every other peer, whatever X-Forwarded-For says.
func TestMetricsOnlyForScrapers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	status := func(app *fiber.App, hdr ...string) int {
		req := httptest.NewRequest("GET", "/metrics", nil) // from 0.0.0.0, as app.Test sends it
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	byDefault := server.New(server.Options{Name: "test", Logger: quiet})
	if st := status(byDefault); st != http.StatusNotFound {
		t.Fatalf("/metrics to a peer outside loopback: %d, want 404", st)
	}
	if st := status(byDefault, "X-Forwarded-For", "127.0.0.1", "X-Real-Ip", "127.0.0.1"); st != http.StatusNotFound {
		t.Fatalf("/metrics with a forged loopback X-Forwarded-For: %d, want 404", st)
	}
	scraped := server.New(server.Options{Name: "test", Logger: quiet, MetricsFrom: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8")}})
	if st := status(scraped); st != http.StatusOK {
		t.Fatalf("/metrics to a configured network: %d, want 200", st)
	}

	// Over a real connection from loopback, the default lets it through.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = byDefault.Listener(ln) }()
	defer byDefault.Shutdown()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics from loopback: %d, want 200", resp.StatusCode)
	}
}

// TestRefusalsOutsideTheChainAreLoggedAndCounted: what fasthttp and Fiber refuse before
// any middleware runs (an unknown method, a body over the limit, headers over the read
// buffer) is answered problem+json where it can be, gets an access-log line and a metric,
// and never puts the request's bytes, a token among them, into the log.
func TestRefusalsOutsideTheChainAreLoggedAndCounted(t *testing.T) {
	var logs testkit.Logs
	app := server.New(server.Options{Name: "test", Logger: slog.New(slog.NewJSONHandler(&logs, nil)), BodyLimit: 1024})
	app.Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Body()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer app.Shutdown()

	send := func(raw string) *http.Response {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", raw[:20], err)
		}
		resp.Body.Close()
		return resp
	}
	const secret = "eyJ-this-token-must-never-be-logged"
	if r := send("FROB /echo HTTP/1.1\r\nHost: x\r\n\r\n"); r.StatusCode != http.StatusMethodNotAllowed ||
		r.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(r.Header.Get("Allow"), "TRACE") || r.Header.Get("Allow") == "" {
		t.Fatalf("unknown method: %d %q Allow %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Allow"))
	}
	if r := send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over the limit: %d", r.StatusCode)
	}
	big := "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nX-Pad: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
	if r := send(big); r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers over the buffer: %d", r.StatusCode)
	}

	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["route"] == "refused" {
			lines = append(lines, m)
		}
	}
	want := []struct {
		status float64
		reason string
	}{{405, "unknown method"}, {413, "body too large"}, {431, "headers too large"}}
	if len(lines) != len(want) {
		t.Fatalf("refusal log lines %v, want %d", lines, len(want))
	}
	for i, w := range want {
		if lines[i]["status"] != w.status || lines[i]["refused"] != w.reason {
			t.Errorf("line %d = %v, want status %v, reason %q", i, lines[i], w.status, w.reason)
		}
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "aaaaaaaa") {
		t.Fatalf("the request's bytes reached the log:\n%s", logs.String())
	}

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{`method="OTHER",route="refused",service="test",status="405"`,
		`method="POST",route="refused",service="test",status="413"`, `route="refused",service="test",status="431"`} {
		if !strings.Contains(string(body), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
}

// TestDebugListenerIsLoopbackOnly: the profiling endpoints open only on a loopback address,
// serve pprof there, and close with their context.
func TestDebugListenerIsLoopbackOnly(t *testing.T) {
	for _, bad := range []string{":6060", "0.0.0.0:6060", "[::]:6060", "10.0.0.1:6060", "example.com:6060", "127.0.0.1"} {
		if err := server.CheckDebugAddr(bad); err == nil {
			t.Errorf("%q accepted for the profiling listener", bad)
		}
	}
	for _, good := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		if err := server.CheckDebugAddr(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := server.ListenDebug(context.Background(), "0.0.0.0:0", quiet); err == nil {
		t.Fatal("ListenDebug opened a listener on every interface")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0") // find a free port
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := server.ListenDebug(ctx, addr, quiet); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/pprof/: %d", resp.StatusCode)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the profiling listener outlived its context")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
