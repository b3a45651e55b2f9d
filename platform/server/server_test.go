package server_test

import (
	"bytes"
	"context"
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
	if r := get("/me?access_token="+token, "Authorization", "Bearer "+token, "X-Request-Id", "abc-123"); r.StatusCode != 200 || r.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("/me %d id %q", r.StatusCode, r.Header.Get("X-Request-Id"))
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
