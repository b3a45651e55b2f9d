package edge

import (
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/valyala/fasthttp"
)

// The security headers of every gateway response. The gateway serves JSON to programs,
// never documents to render, so the strictest values cost nothing: no content may load,
// no page may frame it, no Referer leaves.
const (
	contentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"
	frameOptions          = "DENY"
	referrerPolicy        = "no-referrer"
	noSniff               = "nosniff"
	hstsMaxAge            = 63072000 // two years, the value preload lists ask for
)

// SecurityHeaders sets the security headers with Fiber's helmet middleware before the
// request goes on, so refusals and proxied answers carry them alike (the proxy never
// lets an upstream overwrite them). HSTS is sent only over https: helmet asks
// c.Protocol(), which believes X-Forwarded-Proto only because Forwarding has already
// removed it from requests that did not come through a trusted proxy.
func SecurityHeaders() fiber.Handler {
	return helmet.New(helmet.Config{
		ContentTypeNosniff:    noSniff,
		XFrameOptions:         frameOptions,
		ReferrerPolicy:        referrerPolicy,
		ContentSecurityPolicy: contentSecurityPolicy,
		HSTSMaxAge:            hstsMaxAge,
		// A cross-origin <img> or <script> must not read API answers (CORS fetches are
		// not affected: CORP applies to no-cors requests only).
		CrossOriginResourcePolicy: "same-origin",
	})
}

// OwnedResponseHeaders are the response headers the gateway decides; the proxy drops an
// upstream's values for them.
var OwnedResponseHeaders = []string{
	fiber.HeaderContentSecurityPolicy, fiber.HeaderXFrameOptions, fiber.HeaderXContentTypeOptions,
	fiber.HeaderReferrerPolicy, fiber.HeaderStrictTransportSecurity, fiber.HeaderXXSSProtection,
	fiber.HeaderPermissionsPolicy, "Cross-Origin-Embedder-Policy", "Cross-Origin-Opener-Policy",
	"Cross-Origin-Resource-Policy", "Origin-Agent-Cluster", "X-Dns-Prefetch-Control",
	"X-Download-Options", "X-Permitted-Cross-Domain-Policies",
}

// ServerOptions are the fasthttp-level settings the gateway needs beyond platform/server.
type ServerOptions struct {
	// ReadBufferSize bounds request line plus headers at the socket: fasthttp answers 431
	// beyond it before any middleware runs. Per-route header limits below it are checked
	// by Limits.
	ReadBufferSize int
}

// Harden adjusts the fasthttp server under app for what is answered outside the gateway's
// middleware: headers beyond the read buffer (431) and bodies beyond the global limit
// (413), which fasthttp refuses while reading; methods Fiber does not know, which it would
// answer 400 "Invalid http method" in plain text and are answered 405 problem+json here
// instead; and platform/server's probes, registered before any middleware of the gateway.
// A last wrapper adds the security headers to every response written without helmet.
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
		if !slices.Contains(fiber.DefaultMethods, string(ctx.Method())) {
			c := app.AcquireCtx(ctx)
			c.Set(fiber.HeaderAllow, allowHeader)
			_ = app.ErrorHandler(c, fiber.ErrMethodNotAllowed)
			app.ReleaseCtx(c)
		} else {
			next(ctx)
		}
		ensureSecurityHeaders(&ctx.Response.Header)
	}
	onError := srv.ErrorHandler
	srv.ErrorHandler = func(ctx *fasthttp.RequestCtx, err error) {
		onError(ctx, err)
		ensureSecurityHeaders(&ctx.Response.Header)
	}
}

// ensureSecurityHeaders is the safety net behind helmet for answers written outside the
// chain; it repeats helmet's essential values (the constants above) rather than helmet
// itself, which can only run as middleware.
func ensureSecurityHeaders(h *fasthttp.ResponseHeader) {
	if len(h.Peek(fiber.HeaderXContentTypeOptions)) > 0 {
		return
	}
	h.Set(fiber.HeaderXContentTypeOptions, noSniff)
	h.Set(fiber.HeaderXFrameOptions, frameOptions)
	h.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	h.Set(fiber.HeaderReferrerPolicy, referrerPolicy)
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
