package edge

import (
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// The security headers of every gateway response: the set OWASP's REST Security Cheat
// Sheet gives for APIs, plus Cross-Origin-Resource-Policy. The gateway serves JSON to
// programs, never documents to render, so the strictest values cost nothing: no content
// may load, no page may frame it, no Referer leaves, and a cross-origin <img> or
// <script> cannot read an answer (CORS fetches are not affected: CORP applies to no-cors
// requests only).
//
// The browser headers for documents (Permissions-Policy, Cross-Origin-Opener-Policy,
// X-XSS-Protection and the like, which Fiber's helmet middleware sends) protect pages,
// which the gateway has none of; sending a dozen of them on every JSON answer cost about
// 1.7 µs and 400 bytes per request in the benchmark. helmet cannot leave them out (its
// defaults fill every empty field), so the short set is written here, with keys already
// in canonical form so fasthttp does not normalise them on every response.
var securityHeaders = []struct{ key, value []byte }{
	{[]byte(fiber.HeaderXContentTypeOptions), []byte("nosniff")},
	{[]byte(fiber.HeaderXFrameOptions), []byte("DENY")},
	{[]byte(fiber.HeaderContentSecurityPolicy), []byte("default-src 'none'; frame-ancestors 'none'")},
	{[]byte(fiber.HeaderReferrerPolicy), []byte("no-referrer")},
	{[]byte("Cross-Origin-Resource-Policy"), []byte("same-origin")},
}

// hsts is sent over https only: two years, the value preload lists ask for.
var (
	hstsKey   = []byte(fiber.HeaderStrictTransportSecurity)
	hstsValue = []byte("max-age=63072000; includeSubDomains")
)

// SecurityHeaders sets the security headers before the request goes on, so refusals and
// proxied answers carry them alike (the proxy never lets an upstream overwrite them).
// HSTS is sent only over https, as Forwarding (which must run first) resolved the
// scheme: X-Forwarded-Proto counts only from a trusted proxy.
func SecurityHeaders() fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := &c.Response().Header
		setSecurityHeaders(h)
		if ClientFrom(c).Proto == "https" {
			h.SetCanonical(hstsKey, hstsValue)
		}
		return c.Next()
	}
}

func setSecurityHeaders(h *fasthttp.ResponseHeader) {
	for _, kv := range securityHeaders {
		h.SetCanonical(kv.key, kv.value)
	}
}

// OwnedResponseHeaders are the response headers the gateway decides (the security headers
// and HSTS); the proxy drops an upstream's values for them.
var OwnedResponseHeaders = func() []string {
	names := []string{string(hstsKey)}
	for _, h := range securityHeaders {
		names = append(names, string(h.key))
	}
	return names
}()

// ServerOptions are the fasthttp-level settings the gateway needs beyond platform/server.
type ServerOptions struct {
	// ReadBufferSize bounds request line plus headers at the socket: fasthttp answers 431
	// beyond it before any middleware runs. Per-route header limits below it are checked
	// by Limits.
	ReadBufferSize int
}

// Harden adjusts the fasthttp server under app for what is answered outside the gateway's
// middleware: the read buffer, beyond which fasthttp answers 431 before any middleware
// runs, and the security headers of every response written without SecurityHeaders (the
// refusals platform/server answers and logs itself: 413, 431, unknown methods, and its
// probes, registered before any middleware of the gateway).
//
// platform/server does not expose these settings; Fiber exposes its fasthttp server for
// such needs, and the fields are read when serving, not when the app is built.
func Harden(app *fiber.App, o ServerOptions) {
	srv := app.Server()
	if o.ReadBufferSize > 0 {
		srv.ReadBufferSize = o.ReadBufferSize
	}
	next := srv.Handler
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		next(ctx)
		ensureSecurityHeaders(&ctx.Response.Header)
	}
	onError := srv.ErrorHandler
	srv.ErrorHandler = func(ctx *fasthttp.RequestCtx, err error) {
		onError(ctx, err)
		ensureSecurityHeaders(&ctx.Response.Header)
	}
}

// ensureSecurityHeaders is the safety net behind SecurityHeaders for answers written
// outside the chain.
func ensureSecurityHeaders(h *fasthttp.ResponseHeader) {
	if len(h.Peek(fiber.HeaderXContentTypeOptions)) == 0 {
		setSecurityHeaders(h)
	}
}
