package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/telemetry"
	"example.com/shop/webapp/internal/app"
)

// TestErrorPageSupportCode: with tracing on, an error page shows the short support code
// of the request's trace, which an operator finds in the logs; with it off, no code.
func TestErrorPageSupportCode(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	gatewayDown := func(c *app.Config) { c.GatewayURL = "http://127.0.0.1:1" }
	front := func(e *env) *response {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Traceparent", traceparent)
		return e.browser().do(req)
	}

	if r := front(newEnv(t, gatewayDown)); strings.Contains(r.body, "support-code") {
		t.Error("an untraced error page shows a support code")
	}

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := telemetry.Install(tp)
	t.Cleanup(func() { restore(); _ = tp.Shutdown(context.Background()) })
	r := front(newEnv(t, gatewayDown))
	mustStatus(t, r, http.StatusServiceUnavailable)
	mustContain(t, r, `id="support-code"`, "quote the support code <strong>4BF9-2F35</strong>")
	// The code names the trace the webapp recorded: its request and its call to the gateway.
	var server, client bool
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			continue
		}
		server = server || s.SpanKind == trace.SpanKindServer
		client = client || s.SpanKind == trace.SpanKindClient
	}
	if !server || !client {
		t.Errorf("trace of the support code: server span %v, gateway call %v", server, client)
	}
}
