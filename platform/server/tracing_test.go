package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/logging"
	"example.com/shop/platform/server"
	"example.com/shop/platform/telemetry"
)

// A caller's span: the gateway's client span, say.
const (
	callerTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan        = "00f067aa0ba902b7"
	callerTraceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// lockedBuffer collects log lines written by the logger's background flusher.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// traced turns tracing on with an in-memory exporter for the test's duration.
func traced(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := telemetry.Install(tp)
	t.Cleanup(func() {
		restore()
		_ = tp.Shutdown(context.Background())
	})
	return exp
}

// TestServerSpans: a request through server.New is a server span named by its route
// pattern, a child of the caller's span from traceparent; the handler's outgoing call (through
// telemetry.Transport) is a client span below it whose context travels in traceparent; the
// access log line and the problem+json name the same trace; no id of the path is in any
// span's name or attributes.
func TestServerSpans(t *testing.T) {
	exp := traced(t)
	var logs lockedBuffer
	log, closeLog := logging.New(&logs, "order")

	var downstream http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downstream = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()
	client := telemetry.Client(&http.Client{})

	app := server.New(server.Options{Name: "order", Logger: log})
	app.Get("/api/orders/:id", func(c *fiber.Ctx) error {
		req, err := http.NewRequestWithContext(c.UserContext(), http.MethodGet, upstream.URL+"/internal/payments?order="+c.Params("id"), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return fiber.NewError(fiber.StatusConflict, "the order is already paid")
	})

	const orderID = "8d2f7a61-93c4-4f0e-b7a3-0c7d5e1b2a44"
	req := httptest.NewRequest(http.MethodGet, "/api/orders/"+orderID, nil)
	req.Header.Set("Traceparent", callerTraceparent)
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("want a server and a client span, got %d: %v", len(spans), spans)
	}
	srv, cli := spans[1], spans[0] // ended in that order
	if srv.SpanKind != trace.SpanKindServer || cli.SpanKind != trace.SpanKindClient {
		t.Fatalf("span kinds: %v then %v", cli.SpanKind, srv.SpanKind)
	}
	if srv.Name != "GET /api/orders/:id" {
		t.Errorf("server span name = %q, want the route pattern", srv.Name)
	}
	if got := srv.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("server span trace = %s, want the caller's %s", got, callerTrace)
	}
	if got := srv.Parent.SpanID().String(); got != callerSpan || !srv.Parent.IsRemote() {
		t.Errorf("server span parent = %s (remote %v), want the caller's span %s", got, srv.Parent.IsRemote(), callerSpan)
	}
	if cli.Parent.SpanID() != srv.SpanContext.SpanID() || cli.SpanContext.TraceID() != srv.SpanContext.TraceID() {
		t.Errorf("client span is not the server span's child: parent %s", cli.Parent.SpanID())
	}
	wantDown := "00-" + callerTrace + "-" + cli.SpanContext.SpanID().String() + "-01"
	if got := downstream.Get("Traceparent"); got != wantDown {
		t.Errorf("outgoing traceparent = %q, want the client span's %q", got, wantDown)
	}
	attrs := map[string]string{}
	for _, a := range srv.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["http.route"] != "/api/orders/:id" || attrs["http.response.status_code"] != "409" || attrs["shop.request_id"] == "" {
		t.Errorf("server span attributes: %v", attrs)
	}
	for _, s := range spans {
		if strings.Contains(s.Name, orderID) {
			t.Errorf("span name %q names the order", s.Name)
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), orderID) {
				t.Errorf("span %q attribute %s names the order: %s", s.Name, a.Key, a.Value.Emit())
			}
		}
	}

	if body["traceId"] != callerTrace {
		t.Errorf("problem traceId = %v, want %s", body["traceId"], callerTrace)
	}
	var line map[string]any
	for l := range strings.Lines(logs.String()) {
		if err := json.Unmarshal([]byte(l), &line); err == nil && line["msg"] == "request" {
			break
		}
		line = nil
	}
	if line["trace_id"] != callerTrace || line["span_id"] != srv.SpanContext.SpanID().String() {
		t.Errorf("access log line does not name the server span: %v", line)
	}
}

// TestUntracedWhenOff: with telemetry off, a request is not traced even though a tracer
// provider is installed and the caller sent a traceparent: no span, no traceId in the
// problem, no trace ids in the logs, and the client transport is the one given, unwrapped.
func TestUntracedWhenOff(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp) // what a library might do: telemetry alone turns tracing on
	defer otel.SetTracerProvider(prev)

	var logs bytes.Buffer
	app := server.New(server.Options{Name: "order", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	app.Get("/api/orders/:id", func(*fiber.Ctx) error { return fiber.ErrConflict })
	req := httptest.NewRequest(http.MethodGet, "/api/orders/1", nil)
	req.Header.Set("Traceparent", callerTraceparent)
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["traceId"]; ok {
		t.Errorf("untraced problem has a traceId: %v", body)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported with telemetry off", n)
	}
	if strings.Contains(logs.String(), "trace_id") {
		t.Errorf("untraced log names a trace: %s", logs.String())
	}
	base := &http.Transport{}
	if got := telemetry.Transport(base); got != base {
		t.Errorf("Transport wrapped the client's transport with telemetry off: %T", got)
	}
}
