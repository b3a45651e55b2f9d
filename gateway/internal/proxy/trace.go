package proxy

import (
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/telemetry"
)

// tracerName is the instrumentation scope of the upstream calls' spans.
const tracerName = "example.com/shop/gateway/internal/proxy"

// startSpan starts the client span of the upstream call of c, a child of the request's
// server span, and writes its context into req's traceparent (and tracestate), replacing
// whatever build copied from the client: the upstream's span is the gateway's call's child.
// The span is named by the route pattern and records the upstream's name and address,
// never the path or query, which name orders and payments.
func startSpan(c *fiber.Ctx, t Target, req *fasthttp.Request) trace.Span {
	method := string(req.Header.Method())
	route := c.Route().Path
	ctx, span := otel.Tracer(tracerName).Start(c.UserContext(), method+" "+route,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route),
			semconv.ServerAddress(t.host), attribute.String("shop.upstream", t.Name)))
	otel.GetTextMapPropagator().Inject(ctx, telemetry.RequestHeader{RequestHeader: &req.Header})
	return span
}

// endSpan records the upstream's answer, or the failure to get one, and ends span.
func endSpan(span trace.Span, status int, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "no answer from the upstream")
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(status)))
	} else {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= fiber.StatusInternalServerError {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// errorType names a transport failure by the status it is answered with (classify): an
// error's text names the upstream's address, which the span already has.
func errorType(status int) string {
	switch status {
	case fiber.StatusGatewayTimeout:
		return "timeout"
	case fiber.StatusServiceUnavailable:
		return "no_free_connections"
	}
	return "unavailable"
}
