package problem

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/validation"
)

// RequestIDKey is the Fiber locals key under which the request id middleware stores the id.
const RequestIDKey = "requestid"

// Handler returns the one Fiber ErrorHandler of a service. Domain errors are mapped to
// statuses through m; their messages are written as the detail, so domain packages must
// keep them free of secrets (they are written for the caller). Everything else becomes a
// generic 500 whose real cause goes to the log only.
func Handler(log *slog.Logger, m Map) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := From(err, m)
		if p.Status >= 500 && !isProblem(err) {
			log.ErrorContext(c.UserContext(), "unexpected error", "request_id", requestID(c), "method", c.Method(),
				"path", c.Path(), "err", err)
		}
		return Write(c, p)
	}
}

// From turns any error into a Problem: Problems as they are, mapped domain errors with their
// status and message, Fiber's own errors (404 route, 405, 413 body limit, ...) with their
// status, anything else as a generic 500 without detail.
func From(err error, m Map) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	// Invalid fields are answered the same way by every service: 422, each field listed.
	if ve, ok := errors.AsType[*validation.Error](err); ok {
		return Invalid(validation.ErrInvalid.Error(), ve.Fields...)
	}
	if errors.Is(err, validation.ErrInvalid) {
		return Invalid(validation.ErrInvalid.Error())
	}
	if status, ok := m.lookup(err); ok {
		return New(status, err.Error())
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fromFiber(fe)
	}
	return New(http.StatusInternalServerError, "the server could not complete the request; it has been logged")
}

func isProblem(err error) bool {
	var p *Problem
	var fe *fiber.Error
	return errors.As(err, &p) || errors.As(err, &fe)
}

// fromFiber keeps Fiber's status but replaces messages that echo the request (such as
// "Cannot GET /path?token=...") with a neutral detail.
func fromFiber(fe *fiber.Error) *Problem {
	switch fe.Code {
	case fiber.StatusNotFound:
		return NotFound("no such resource")
	case fiber.StatusMethodNotAllowed:
		return New(fe.Code, "method not allowed on this resource")
	case fiber.StatusRequestEntityTooLarge:
		return New(fe.Code, "request body too large")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return New(fe.Code, "request headers too large")
	case fiber.StatusBadRequest:
		return BadRequest("the request could not be read")
	}
	if fe.Code >= 500 {
		return New(fe.Code, "")
	}
	return New(fe.Code, fe.Message)
}

// Write sends p as problem+json, with its headers, the request id and the trace id.
func Write(c *fiber.Ctx, p *Problem) error {
	out := *p
	if out.Title == "" {
		out.Title = http.StatusText(out.Status)
	}
	if out.Type == "" {
		out.Type = "about:blank"
	}
	if out.RequestID == "" {
		out.RequestID = requestID(c)
	}
	if out.TraceID == "" {
		out.TraceID = TraceID(c)
	}
	for k, v := range out.Headers {
		c.Set(k, v)
	}
	if out.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(out.RetryAfter))
	}
	c.Status(out.Status)
	if err := c.JSON(out); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ContentType)
	return nil
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(RequestIDKey).(string)
	return id
}

// TraceID is the trace id of the request's span (set by platform/server's tracing
// middleware), or "" when the request is not traced.
func TraceID(c *fiber.Ctx) string {
	if sc := trace.SpanContextFromContext(c.UserContext()); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
