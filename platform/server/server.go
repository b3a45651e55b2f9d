// Package server bootstraps the Fiber app every shop service runs on: request ids,
// structured access logs that never carry a token, panic recovery, problem+json errors,
// health and readiness probes, Prometheus metrics, timeouts and graceful shutdown, and a
// server span per request when platform/telemetry has turned tracing on.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/google/uuid"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/telemetry"
)

// HeaderRequestID carries the request id between the gateway, the services and the logs.
const HeaderRequestID = "X-Request-Id"

// Check is a readiness check, e.g. a database ping.
type Check func(ctx context.Context) error

// Options configure New. Zero values are sensible defaults.
type Options struct {
	// Name is the service name, used in logs and metrics.
	Name   string
	Logger *slog.Logger
	// Errors maps the service's domain errors to statuses.
	Errors problem.Map
	// Ready lists named readiness checks behind /readyz.
	Ready map[string]Check
	// BodyLimit in bytes; 1 MiB when zero.
	BodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout bound slow clients; 10s, 30s and 60s by default.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// TrustedProxies (IPs or CIDRs) may set X-Forwarded-Proto/Host/For; from anyone else
	// those headers are ignored. Empty: nobody is trusted.
	TrustedProxies []string
	// MetricsFrom are the networks whose peers may read /metrics; to anyone else it does
	// not exist (404). Only the TCP peer counts, never a forwarded header. Empty: loopback
	// only. Name the scraper's own addresses, not a network a load balancer sits in: the
	// public's requests arrive from the balancer.
	MetricsFrom []netip.Prefix
}

// loopback is where /metrics may be read from when Options.MetricsFrom is empty.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// New returns a Fiber app with the shop's middleware chain and probes installed. Routes are
// added by the caller after it.
func New(o Options) *fiber.App {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BodyLimit == 0 {
		o.BodyLimit = 1 << 20
	}
	o.ReadTimeout = orDefault(o.ReadTimeout, 10*time.Second)
	o.WriteTimeout = orDefault(o.WriteTimeout, 30*time.Second)
	o.IdleTimeout = orDefault(o.IdleTimeout, 60*time.Second)

	app := fiber.New(fiber.Config{
		AppName:               o.Name,
		DisableStartupMessage: true,
		ErrorHandler:          problem.Handler(o.Logger, o.Errors),
		BodyLimit:             o.BodyLimit,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		IdleTimeout:           o.IdleTimeout,
		// Routes are exact: /api/orders/ is not /api/orders, so a policy can't be sidestepped
		// by a variant spelling.
		StrictRouting: true,
		CaseSensitive: true,
		// Fiber's strings (method, path, params, headers, cookies) are otherwise views into
		// buffers that fasthttp reuses for the connection's next request: one kept in a map,
		// a cache, a log written later or a goroutine changes under its holder, which once
		// crashed every service under ordinary concurrent traffic. Copies cost a few small
		// allocations per request; a reference service does not trade memory safety for them.
		Immutable: true,
		// Fiber trusts X-Forwarded-* from every peer unless told otherwise.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          o.TrustedProxies,
	})
	metrics := newMetrics(o.Name)
	observeRefusals(app, o.Logger, metrics)
	app.Use(sanitizeRequestID, requestid.New(requestid.Config{
		Header:     HeaderRequestID,
		Generator:  uuid.NewString,
		ContextKey: problem.RequestIDKey,
	}))
	// Tracing wraps the access log, so the log line names the request's trace.
	if telemetry.Enabled() {
		app.Use(tracing())
	}
	app.Use(accessLog(o.Logger, metrics))
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		o.Logger.ErrorContext(c.UserContext(), "panic", "request_id", c.Locals(problem.RequestIDKey), "panic", e)
	}}))

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "up"}) })
	app.Get("/readyz", readiness(o.Ready, o.Logger))
	scrapers := o.MetricsFrom
	if len(scrapers) == 0 {
		scrapers = loopback
	}
	app.Get("/metrics", onlyFrom(scrapers), metrics.handler())
	return app
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// sanitizeRequestID drops a client-sent request id that is not a plain token, so ids are
// safe to log and echo; requestid then generates a fresh one.
func sanitizeRequestID(c *fiber.Ctx) error {
	if id := c.Get(HeaderRequestID); id != "" && !requestIDPattern.MatchString(id) {
		c.Request().Header.Del(HeaderRequestID)
	}
	return c.Next()
}

// accessLog writes one structured line per request and records its metrics. It logs the
// path without the query string, and the subject rather than any credential.
func accessLog(log *slog.Logger, m *metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			// Let the ErrorHandler write the answer now so the log shows the real status.
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		elapsed := time.Since(start)
		route := routeLabel(c)
		m.observe(route, methodLabel(c.Method()), status, elapsed)
		if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			return nil
		}
		// LogAttrs with typed attributes: no value is boxed into an interface per request.
		id, _ := c.Locals(problem.RequestIDKey).(string)
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs,
			slog.String("request_id", id), slog.String("method", c.Method()), slog.String("path", c.Path()),
			slog.String("route", route), slog.Int("status", status),
			slog.Int64("duration_ms", elapsed.Milliseconds()), slog.String("ip", c.IP()),
		)
		if p, ok := authn.PrincipalFrom(c); ok {
			attrs = append(attrs, slog.String("sub", p.Subject), slog.String("client", p.ClientID))
		}
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

// onlyFrom answers 404, as for a route that does not exist, unless the TCP peer is in one
// of networks. Metrics name every route, status and rate, and the runtime's version: what
// an attacker maps a service with, so a public port does not hand them out.
func onlyFrom(networks []netip.Prefix) fiber.Handler {
	return func(c *fiber.Ctx) error {
		peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
		peer = peer.Unmap()
		for _, n := range networks {
			if n.Contains(peer) {
				return c.Next()
			}
		}
		return fiber.ErrNotFound
	}
}

// routeLabel is the matched route pattern, never the raw path, so metrics stay bounded.
func routeLabel(c *fiber.Ctx) string {
	if r := c.Route(); r != nil && r.Path != "" && r.Path != "/" {
		return r.Path
	}
	if c.Path() == "/" {
		return "/"
	}
	return "unmatched"
}

// readiness answers 503 naming the failed checks; the errors themselves go to the log only,
// since they may name internal hosts.
func readiness(checks map[string]Check, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		var failed []string
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed = append(failed, name)
				log.Warn("not ready", "check", name, "err", err)
			}
		}
		if len(failed) > 0 {
			c.Status(fiber.StatusServiceUnavailable)
			return c.JSON(fiber.Map{"status": "down", "failed": failed})
		}
		return c.JSON(fiber.Map{"status": "up"})
	}
}

// ShutdownTimeout is how long Serve lets requests in flight finish after its context ends.
// A deployment's termination grace period must cover it (deploy/ checks that it does).
const ShutdownTimeout = 10 * time.Second

// Serve runs app on ln until ctx is cancelled (SIGTERM in main), then shuts down
// gracefully, letting requests in flight finish for up to ShutdownTimeout.
func Serve(ctx context.Context, app *fiber.App, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownErr := app.ShutdownWithTimeout(ShutdownTimeout)
	// If ctx ended before Fiber started serving, Shutdown had nothing to stop; closing the
	// listener makes a late app.Listener return at once instead of serving forever.
	_ = ln.Close()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return shutdownErr
}

// ListenAndServe listens on addr and calls Serve.
func ListenAndServe(ctx context.Context, app *fiber.App, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, app, ln)
}
