// Package telemetry is the one place the shop's services configure OpenTelemetry tracing.
//
// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// is set: then Setup installs an SDK tracer provider exporting OTLP over HTTP, configured
// by the standard OTEL_* variables, and the W3C trace-context propagator. Off, nothing is
// installed: the server middleware and the client transports check Enabled once, when they
// are built, and are then not in the path at all, so a service that does not trace pays
// nothing for being able to.
//
// Sampling is parent-based: a request that arrives with a sampled traceparent is traced,
// one without is sampled at OTEL_TRACES_SAMPLER_ARG (a ratio, 1 when unset), so only the
// edge decides and a trace is never cut in the middle. OTEL_TRACES_SAMPLER, when set,
// replaces this with any sampler the SDK knows.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ShutdownTimeout bounds the final flush of spans when a service stops, so a collector
// that is down cannot hold up the shutdown.
const ShutdownTimeout = 5 * time.Second

// enabled is set by Setup when it installs a tracer provider.
var enabled atomic.Bool

// Enabled reports whether Setup (or Install) has installed a tracer provider.
func Enabled() bool { return enabled.Load() }

// Setup configures tracing for service (its name and the binary's Version become resource
// attributes)
// from getenv: whether to trace, where to and how much. The exporter's other settings and
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the SDK from the process
// environment. It returns the function that flushes the spans still buffered and stops the
// exporter; call it when the service stops. With no OTLP endpoint configured, tracing stays
// off and the function does nothing.
func Setup(ctx context.Context, service string, getenv func(string) string) (func() error, error) {
	endpoint := tracesEndpoint(getenv)
	if endpoint == "" || getenv("OTEL_SDK_DISABLED") == "true" {
		return func() error { return nil }, nil
	}
	sampler, err := sampler(getenv)
	if err != nil {
		return nil, err
	}
	// The exporter reads the other OTEL_EXPORTER_OTLP_* settings (headers, timeout,
	// compression, certificates) from the process environment itself.
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	// WithFromEnv lets OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(Version())),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)}
	if sampler != nil {
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	Install(tp)
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		return tp.Shutdown(ctx)
	}, nil
}

// tracesEndpoint is the URL spans are posted to: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it
// is, or OTEL_EXPORTER_OTLP_ENDPOINT with the signal's path added (the OTLP specification's
// rule); "" when neither is set.
func tracesEndpoint(getenv func(string) string) string {
	if e := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	if e := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		return strings.TrimSuffix(e, "/") + "/v1/traces"
	}
	return ""
}

// sampler is the parent-based ratio sampler, or nil when OTEL_TRACES_SAMPLER names one for
// the SDK to build.
func sampler(getenv func(string) string) (sdktrace.Sampler, error) {
	if getenv("OTEL_TRACES_SAMPLER") != "" {
		return nil, nil
	}
	ratio := 1.0
	if arg := getenv("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(r >= 0 && r <= 1) { // NaN is neither
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG = %q: must be a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
}

// Install makes tp the global tracer provider and W3C trace context the propagator, and
// turns tracing on for what is built after it. It returns the function that puts back what
// was there before: Setup has no use for it, tests (which install a provider around an
// in-memory exporter) call it in their cleanup. Only the traceparent and tracestate headers
// are propagated: baggage would carry whatever a caller put in it to every service.
func Install(tp trace.TracerProvider) (restore func()) {
	prevProvider, prevPropagator, prevEnabled := otel.GetTracerProvider(), otel.GetTextMapPropagator(), enabled.Load()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	enabled.Store(true)
	return func() {
		otel.SetTracerProvider(prevProvider)
		otel.SetTextMapPropagator(prevPropagator)
		enabled.Store(prevEnabled)
	}
}

// Transport returns base (http.DefaultTransport when nil) wrapped so that every call is a
// client span whose context travels in the traceparent header; with tracing off it returns
// base itself. The span's url.full keeps only the scheme and host: the paths and queries of
// the shop's calls name orders, payments and users.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if !Enabled() {
		return base
	}
	return otelhttp.NewTransport(redactURL{base})
}

// redactURL runs inside otelhttp's client span and replaces the url.full it recorded: a
// later value of an attribute replaces the earlier one.
type redactURL struct{ next http.RoundTripper }

func (r redactURL) RoundTrip(req *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(req.Context()); span.IsRecording() {
		span.SetAttributes(semconv.URLFull(req.URL.Scheme + "://" + req.URL.Host))
	}
	return r.next.RoundTrip(req)
}

// Client returns c (a new client when nil) with its transport wrapped by Transport; c is
// changed in place, so call it where the client is built.
func Client(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	c.Transport = Transport(c.Transport)
	return c
}

// Version is the version of the running binary: its module version when built from a
// tagged module, else the commit it was built from when the build recorded it, else
// "devel".
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return s.Value
		}
	}
	return "devel"
}
