package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"example.com/shop/platform/problem"
)

// allowed is the Allow header of a 405 for a method Fiber does not know: what the shop's
// services may answer at all. TRACE and CONNECT are left out everywhere.
var allowed = strings.Join([]string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut,
	fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions,
}, ", ")

// refusedRoute labels answers given before any route matched.
const refusedRoute = "refused"

// observeRefusals makes the answers given outside the middleware chain look and count like
// every other: a body over the limit (413) and headers over the read buffer (431), which
// fasthttp refuses while reading, a request that is not HTTP (400), a request whose length
// is ambiguous (400 and the connection closed, see framingFault), and a method Fiber does
// not know, which it would answer 400 "Invalid http method" in plain text and which is
// answered 405 problem+json here. Each gets an access-log line and a metric, so an attack
// that never reaches a handler still shows.
//
// Fiber exposes its fasthttp server for such needs; its Handler and ErrorHandler are read
// when serving, so wrappers set here and later (the gateway adds its own) all apply.
func observeRefusals(app *fiber.App, log *slog.Logger, m *metrics) {
	srv := app.Server()
	next := srv.Handler
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		defer recoverOutermost(app, log, ctx)
		if reason := framingFault(&ctx.Request.Header); reason != "" {
			c := app.AcquireCtx(ctx)
			_ = app.ErrorHandler(c, problem.BadRequest(framingDetail))
			app.ReleaseCtx(c)
			// Closing is the point, set after the answer so that nothing writing it can undo
			// it: the connection's next bytes may be a request hidden in this one's body.
			ctx.SetConnectionClose()
			refused(log, m, ctx, reason, time.Since(ctx.Time()))
			return
		}
		if methodLabel(ctx.Method()) != methodOther {
			next(ctx)
			return
		}
		c := app.AcquireCtx(ctx)
		c.Set(fiber.HeaderAllow, allowed)
		_ = app.ErrorHandler(c, fiber.ErrMethodNotAllowed)
		app.ReleaseCtx(c)
		refused(log, m, ctx, "unknown method", time.Since(ctx.Time()))
	}
	onError := srv.ErrorHandler
	srv.ErrorHandler = func(ctx *fasthttp.RequestCtx, err error) {
		onError(ctx, err)
		// fasthttp stamps a request's time only when it calls the handler, so how long a
		// refused read took is unknown here.
		refused(log, m, ctx, readError(err), 0)
	}
}

// readError names what went wrong reading a request, in words of its own: fasthttp's
// messages quote the bytes it read, which can hold an Authorization header.
func readError(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body too large"
	case errors.As(err, &small):
		return "headers too large"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "read timeout"
	}
	return "unreadable request"
}

// maxLoggedPath bounds what a refused request can put into the log.
const maxLoggedPath = 256

func refused(log *slog.Logger, m *metrics, ctx *fasthttp.RequestCtx, reason string, elapsed time.Duration) {
	method := methodLabel(ctx.Method())
	status := ctx.Response.StatusCode()
	m.observe(refusedRoute, method, status, elapsed)
	path := string(ctx.Path())
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath]
	}
	log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", method), slog.String("path", path), slog.String("route", refusedRoute),
		slog.Int("status", status), slog.Int64("duration_ms", elapsed.Milliseconds()),
		slog.String("ip", ctx.RemoteIP().String()), slog.String("refused", reason))
}

// methodOther labels every method Fiber does not know: a label per invented method would
// let a client grow the metrics.
const methodOther = "OTHER"

// methodLabel names a request method with one of Fiber's method constants, never with a
// string made from the request. fasthttp reuses a connection's buffers for its next
// request, and Fiber's Ctx.Method is a view into them (Immutable off), so a map key or
// label value built from it would change under whoever kept it: the metrics cache once
// crashed the process that way ("HashTrieMap: ran out of hash bits"). The constants are
// the program's own strings; the lookup allocates nothing.
func methodLabel[T string | []byte](method T) string {
	for _, m := range fiber.DefaultMethods {
		if string(method) == m { // compared in place, no conversion is allocated
			return m
		}
	}
	return methodOther
}

// recoverOutermost keeps a panic anywhere in the request path from ending the process: the
// recover middleware sits inside the chain, so a panic in the access log, the request id
// middleware or fasthttp-level code before it would otherwise reach the goroutine's top and
// take every request in flight down with it. The panic is logged with the request id and
// stack; the client gets a generic 500 problem+json and its connection is closed, since the
// response may have been half written.
func recoverOutermost(app *fiber.App, log *slog.Logger, ctx *fasthttp.RequestCtx) {
	e := recover()
	if e == nil {
		return
	}
	id, _ := ctx.UserValue(problem.RequestIDKey).(string)
	log.Error("panic", "request_id", id, "panic", fmt.Sprint(e), "stack", string(debug.Stack()))
	ctx.Response.Reset()
	ctx.SetConnectionClose()
	c := app.AcquireCtx(ctx)
	defer app.ReleaseCtx(c)
	if id != "" {
		c.Set(HeaderRequestID, id)
	}
	_ = problem.Write(c, problem.New(fiber.StatusInternalServerError, ""))
}
