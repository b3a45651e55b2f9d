package server

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/problem"
	"example.com/shop/platform/telemetry"
)

// tracerName is the instrumentation scope of the server spans.
const tracerName = "example.com/shop/platform/server"

// tracing makes each request a server span, the child of the caller's span when the request
// carries a W3C traceparent, and puts it in the request's user context, where handlers,
// outgoing calls (platform/telemetry.Transport), problem+json answers and log lines find it.
//
// It is this package's own rather than contrib's otelfiber: otelfiber/v2 pins an
// OpenTelemetry release several versions behind the one the shop uses, and records the raw
// path (order and payment ids). This one names the span "METHOD /route/:pattern" once the
// router has matched, records the route pattern and never the path or query, and adds only
// the request id, so a span is found from a log line and the other way round.
func tracing() fiber.Handler {
	tracer := otel.Tracer(tracerName)
	propagator := otel.GetTextMapPropagator()
	return func(c *fiber.Ctx) error {
		ctx := propagator.Extract(c.UserContext(), telemetry.RequestHeader{RequestHeader: &c.Request().Header})
		method := methodLabel(c.Method())
		ctx, span := tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
		defer span.End()
		c.SetUserContext(ctx)

		err := c.Next()

		route := routeLabel(c)
		status := c.Response().StatusCode()
		span.SetName(method + " " + route)
		id, _ := c.Locals(problem.RequestIDKey).(string)
		span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status),
			attribute.String("shop.request_id", id))
		// A server span is an error for a 5xx only; a 4xx is the client's (semconv).
		if status >= fiber.StatusInternalServerError {
			span.SetStatus(codes.Error, strconv.Itoa(status))
		}
		return err
	}
}
