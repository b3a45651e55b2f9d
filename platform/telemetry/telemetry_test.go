package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// keepGlobals puts the global provider, propagator and switch back after a test of Setup.
func keepGlobals(t *testing.T) {
	tp, prop, on := otel.GetTracerProvider(), otel.GetTextMapPropagator(), enabled.Load()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
		enabled.Store(on)
	})
}

// TestOffWithoutEndpoint: no OTLP endpoint, no tracing: nothing is installed.
func TestOffWithoutEndpoint(t *testing.T) {
	keepGlobals(t)
	shutdown, err := Setup(context.Background(), "order", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Error("tracing is on with no endpoint configured")
	}
	if err := shutdown(); err != nil {
		t.Error(err)
	}
}

// TestShutdownFlushes: with an endpoint, a span ended just before the service stops still
// reaches the collector, sent by the shutdown function as OTLP over HTTP.
func TestShutdownFlushes(t *testing.T) {
	keepGlobals(t)
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
	}))
	defer collector.Close()

	shutdown, err := Setup(context.Background(), "order", env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_TRACES_SAMPLER_ARG": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("tracing is off with an endpoint configured")
	}
	_, span := otel.Tracer("test").Start(context.Background(), "checkout")
	span.End()
	if posts.Load() != 0 {
		t.Fatal("the span was sent at once; the batcher should hold it")
	}
	if err := shutdown(); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 1 {
		t.Errorf("collector got %d exports at shutdown, want 1", posts.Load())
	}
}

// TestSamplerRatio: the ratio must be a number in [0, 1]; anything else is refused at
// start-up rather than silently tracing everything or nothing.
func TestSamplerRatio(t *testing.T) {
	for _, arg := range []string{"", "0", "0.1", "1"} {
		if _, err := sampler(env(map[string]string{"OTEL_TRACES_SAMPLER_ARG": arg})); err != nil {
			t.Errorf("%q: %v", arg, err)
		}
	}
	for _, arg := range []string{"ten percent", "-0.5", "2", "NaN"} {
		if _, err := sampler(env(map[string]string{"OTEL_TRACES_SAMPLER_ARG": arg})); err == nil {
			t.Errorf("%q accepted", arg)
		}
	}
}
