package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"
)

// Sixteen keep-alive clients with mixed methods and paths once crashed every service within
// a second: the metrics cache kept Ctx.Method(), a view into a buffer the next request
// reuses, as a map key. Handlers that keep what they read (here a map of seen ids, as a
// cache would) must be safe too.
func TestServerSurvivesMixedConcurrentLoad(t *testing.T) {
	app := server.New(server.Options{Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var mu sync.Mutex
	seen := map[string]string{}
	keep := func(c *fiber.Ctx) error {
		mu.Lock()
		seen[c.Params("id")] = c.Method() + " " + c.Path() + " " + c.Get(fiber.HeaderAuthorization)
		mu.Unlock()
		return c.SendStatus(fiber.StatusNoContent)
	}
	app.Get("/api/things", keep)
	app.Get("/api/things/:id", keep)
	app.Post("/api/things/:id/pay", keep)
	app.Delete("/api/things/:id", keep)

	testkit.MixedLoad(t, testkit.ServeLoopback(t, app), app, testkit.LoadOptions{Header: http.Header{"Authorization": {"Bearer not-a-token"}}})

	mu.Lock()
	defer mu.Unlock()
	for id, v := range seen {
		if id != "" && len(v) > 0 && v[0] != 'G' && v[0] != 'P' && v[0] != 'D' {
			t.Errorf("kept value for %q changed under the handler: %q", id, v)
		}
	}
}

// A panic outside the recover middleware, here in the access log's own logger, is answered
// 500 problem+json and logged with the request id; the process goes on serving.
func TestPanicOutsideTheChainIsAnswered(t *testing.T) {
	logs := &testkit.Logs{}
	h := &panicOnAccessLog{Handler: slog.NewJSONHandler(logs, nil)}
	app := server.New(server.Options{Name: "test", Logger: slog.New(h)})
	app.Get("/ok", func(c *fiber.Ctx) error { return c.SendString("ok") })
	base := testkit.ServeLoopback(t, app)

	resp, err := http.Get(base + "/ok")
	if err != nil {
		t.Fatalf("the process did not survive a panic in its access log: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" ||
		strings.Contains(string(body), "access log exploded") {
		t.Fatalf("answered %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	id := resp.Header.Get(server.HeaderRequestID)
	if id == "" || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) || !strings.Contains(logs.String(), "access log exploded") {
		t.Fatalf("the panic was not logged with request id %q:\n%s", id, logs)
	}
	h.calm.Store(true)
	if resp, err := http.Get(base + "/ok"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the panic: %v", errOrStatus(err, resp))
	}
}

func errOrStatus(err error, resp *http.Response) any {
	if err != nil {
		return err
	}
	return resp.Status
}

// panicOnAccessLog panics when the access log writes its line, until calm.
type panicOnAccessLog struct {
	slog.Handler
	calm atomic.Bool
}

func (h *panicOnAccessLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" && !h.calm.Load() {
		panic("access log exploded")
	}
	return h.Handler.Handle(ctx, r)
}

// Every service's app copies Fiber's strings, so a handler may keep what it reads; `make lint`
// checks that no service builds its app another way.
func TestAppsCopyFiberStrings(t *testing.T) {
	if !server.New(server.Options{Name: "test"}).Config().Immutable {
		t.Fatal("server.New builds apps whose strings are views into reused request buffers")
	}
}
