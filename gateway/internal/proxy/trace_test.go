package proxy_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/gateway/internal/proxy"
	"example.com/shop/platform/server"
	"example.com/shop/platform/telemetry"
)

const (
	callerTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerTraceparent = "00-" + callerTrace + "-00f067aa0ba902b7-01"
	orderID           = "8d2f7a61-93c4-4f0e-b7a3-0c7d5e1b2a44"
)

// gatewayTo builds a traced gateway app whose one route proxies to base.
func gatewayTo(t *testing.T, base string) (*tracetest.InMemoryExporter, func(*http.Request) *http.Response) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := telemetry.Install(tp)
	t.Cleanup(func() { restore(); _ = tp.Shutdown(context.Background()) })

	target, err := proxy.NewTarget("order", base)
	if err != nil {
		t.Fatal(err)
	}
	app := server.New(server.Options{Name: "gateway"})
	app.Get("/api/orders/:id", proxy.New(proxy.Options{Timeout: 2 * time.Second, ConnectTimeout: time.Second}).To(target))
	return exp, func(r *http.Request) *http.Response {
		resp, err := app.Test(r, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
}

// TestUpstreamCallIsAClientSpan: the upstream receives the traceparent of the gateway's
// client span, itself the child of the request's server span in the caller's trace; the
// span is named by the route, and no span names the order.
func TestUpstreamCallIsAClientSpan(t *testing.T) {
	var got string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Traceparent")
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	exp, do := gatewayTo(t, upstream.URL)

	req := httptest.NewRequest(http.MethodGet, "/api/orders/"+orderID, nil)
	req.Header.Set("Traceparent", callerTraceparent)
	if resp := do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("want the gateway's server and client spans, got %d", len(spans))
	}
	cli, srv := spans[0], spans[1]
	if cli.SpanKind != trace.SpanKindClient || cli.Name != "GET /api/orders/:id" {
		t.Errorf("client span: %v %q", cli.SpanKind, cli.Name)
	}
	if cli.Parent.SpanID() != srv.SpanContext.SpanID() || srv.SpanContext.TraceID().String() != callerTrace {
		t.Errorf("client span parent %s, server span %s in trace %s", cli.Parent.SpanID(), srv.SpanContext.SpanID(), srv.SpanContext.TraceID())
	}
	if want := "00-" + callerTrace + "-" + cli.SpanContext.SpanID().String() + "-01"; got != want {
		t.Errorf("upstream traceparent = %q, want the client span's %q (not the caller's)", got, want)
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(s.Name+a.Value.Emit(), orderID) {
				t.Errorf("span %q names the order in %s", s.Name, a.Key)
			}
		}
	}
}

// TestUpstreamDownIsAFailedSpan: an upstream that does not answer is a 502 and a client
// span with an error status, whose description names no address.
func TestUpstreamDownIsAFailedSpan(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	exp, do := gatewayTo(t, closed)

	if resp := do(httptest.NewRequest(http.MethodGet, "/api/orders/"+orderID, nil)); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("want 2 spans, got %d", len(spans))
	}
	cli := spans[0]
	if cli.Status.Code != codes.Error || strings.Contains(cli.Status.Description, "127.0.0.1") {
		t.Errorf("client span status %+v", cli.Status)
	}
	if spans[1].Status.Code != codes.Error {
		t.Errorf("server span of a 502 is not an error: %+v", spans[1].Status)
	}
}
