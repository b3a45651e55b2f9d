// Package proxy forwards a request the gateway has admitted to its upstream service and
// relays the answer: the same bearer token goes upstream unchanged (token relay), while
// every header through which a client could speak for the gateway is dropped and the
// gateway's own forwarding headers are set.
//
// The transport is fasthttp's Client, the one Fiber's proxy middleware wraps. The wrapper
// itself is not used: proxy.Do forwards the client's request object as it is (deleting
// only Connection), writes the upstream's answer over the response (losing the security
// headers already set), and returns transport errors unclassified, which the platform
// would answer 500. A gateway needs the opposite on each point, so this package builds a
// fresh upstream request from an explicit header policy, copies the answer back through
// a filter, and maps faults to 502, 503 and 504.
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
	"example.com/shop/platform/telemetry"

	"example.com/shop/gateway/internal/edge"
)

// Options configure a Proxy.
type Options struct {
	// Timeout bounds a whole upstream exchange: connecting, sending, waiting, reading.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP (and TLS) connect alone, so an unreachable host
	// fails fast instead of using up Timeout.
	ConnectTimeout time.Duration
	// MaxConnsPerHost bounds connections to one upstream; 512 when zero.
	MaxConnsPerHost int
	// MaxResponseBytes bounds an upstream answer; 8 MiB when zero.
	MaxResponseBytes int
	// TLS configures https upstreams (mTLS later); nil uses the system roots.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Proxy forwards requests to upstreams. It is safe for concurrent use.
type Proxy struct {
	client  *fasthttp.Client
	timeout time.Duration
	log     *slog.Logger
}

// New returns a Proxy.
func New(o Options) *Proxy {
	if o.MaxConnsPerHost == 0 {
		o.MaxConnsPerHost = 512
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Each new connection resolves the upstream's name afresh: a restarted container or a
	// rescheduled pod comes back under a new address. fasthttp's own TCPDialer caches DNS
	// answers for a minute, which kept the gateway dialling a stopped payment container's
	// old address for up to a minute after the new one was ready. Connections are pooled,
	// so a lookup is paid per new connection, not per request.
	dialer := &net.Dialer{Timeout: o.ConnectTimeout}
	return &Proxy{
		timeout: o.Timeout,
		log:     o.Logger,
		client: &fasthttp.Client{
			Dial: func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) },
			// Paths are canonical before they get here; the client must send them as they
			// are, not "normalise" them again.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
			MaxConnsPerHost:          o.MaxConnsPerHost,
			// With every connection busy, wait as long as a connect may take, then 503.
			MaxConnWaitTimeout:  o.ConnectTimeout,
			MaxIdleConnDuration: 30 * time.Second,
			MaxResponseBodySize: o.MaxResponseBytes,
			ReadTimeout:         o.Timeout,
			WriteTimeout:        o.Timeout,
			TLSConfig:           o.TLS,
			// A request is retried only when a pooled keep-alive connection turned out to
			// be closed, and only if idempotent; never after the upstream may have acted.
			MaxIdemponentCallAttempts: 2,
		},
	}
}

// Target is an upstream base URL, such as http://order:8081.
type Target struct {
	Name   string
	scheme string
	host   string
}

// NewTarget parses an upstream base URL: http or https, a host, nothing else.
func NewTarget(name, base string) (Target, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return Target{}, fmt.Errorf("upstream %s: %q is not a base URL like http://host:port", name, base)
	}
	return Target{Name: name, scheme: u.Scheme, host: u.Host}, nil
}

// To returns the handler that forwards requests to t. It must run last in a route's
// chain: after authentication, authorisation and limits.
//
// With tracing on (platform/telemetry) each call is a client span whose context the
// upstream receives in traceparent; with it off, a valid traceparent of the client's is
// passed on as it came, and no span is started.
func (p *Proxy) To(t Target) fiber.Handler {
	traced := telemetry.Enabled()
	return func(c *fiber.Ctx) error {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)

		p.build(c, t, req)
		var span trace.Span
		if traced {
			span = startSpan(c, t, req)
		}
		start := time.Now()
		if err := p.client.DoTimeout(req, resp, p.timeout); err != nil {
			pr := classify(err)
			if span != nil {
				endSpan(span, pr.Status, err)
			}
			p.log.WarnContext(c.UserContext(), "upstream failed", "request_id", c.Locals(problem.RequestIDKey), "upstream", t.Name,
				"status", pr.Status, "after_ms", time.Since(start).Milliseconds(), "err", err.Error())
			return pr
		}
		if span != nil {
			endSpan(span, resp.StatusCode(), nil)
		}
		relay(c, resp)
		return nil
	}
}

// build writes the upstream request: the client's method, canonical path, query and
// body; its headers through the policy of forwardRequestHeader; and the gateway's own
// request id and forwarding headers.
func (p *Proxy) build(c *fiber.Ctx, t Target, req *fasthttp.Request) {
	in := &c.Request().Header
	req.Header.SetMethodBytes(in.Method())
	uri := req.URI()
	uri.SetScheme(t.scheme)
	uri.SetHost(t.host)
	// c.Path is the path as received, which CanonicalOnly has proven canonical: what
	// was authorised is exactly what is sent, byte for byte.
	uri.SetPath(c.Path())
	uri.SetQueryStringBytes(c.Request().URI().QueryString())

	var drop tokens
	in.VisitAll(func(k, v []byte) { drop.collect(k, v) })
	in.VisitAll(func(k, v []byte) {
		if forwardRequestHeader(k) && !drop.has(k) {
			req.Header.AddBytesKV(k, v)
		}
	})
	if tp := in.Peek("Traceparent"); validTraceparent(tp) {
		req.Header.SetBytesV("Traceparent", tp)
		if ts := in.Peek("Tracestate"); len(ts) > 0 && len(ts) <= 512 {
			req.Header.SetBytesV("Tracestate", ts)
		}
	}
	if id, ok := c.Locals(problem.RequestIDKey).(string); ok && id != "" {
		req.Header.Set(server.HeaderRequestID, id)
	}
	cl := edge.ClientFrom(c)
	if xff := cl.ForwardedFor(); xff != "" {
		req.Header.Set(fiber.HeaderXForwardedFor, xff)
	}
	if cl.Proto != "" {
		req.Header.Set(fiber.HeaderXForwardedProto, cl.Proto)
	}
	if cl.Host != "" {
		req.Header.Set(fiber.HeaderXForwardedHost, cl.Host)
	}
	// The body is referenced, not copied: DoTimeout is synchronous, and a fresh
	// Content-Length is written from it, so no framing the client chose (chunked,
	// conflicting lengths) ever reaches the upstream.
	req.SetBodyRaw(c.Request().Body())
}

// relay copies the upstream's answer into the response: status, body, and the headers
// forwardResponseHeader admits. The gateway's security and rate-limit headers, already on
// the response, stay as they are.
func relay(c *fiber.Ctx, resp *fasthttp.Response) {
	out := &c.Response().Header
	var drop tokens
	resp.Header.VisitAll(func(k, v []byte) { drop.collect(k, v) })
	resp.Header.VisitAll(func(k, v []byte) {
		if forwardResponseHeader(k) && !drop.has(k) {
			out.AddBytesKV(k, v)
		}
	})
	c.Status(resp.StatusCode())
	if c.Method() == fiber.MethodHead {
		out.SetContentLength(resp.Header.ContentLength())
		return
	}
	c.Response().SetBody(resp.Body())
}

// classify maps a transport error to the caller's answer. No detail of the upstream (its
// address, the error text) goes to the caller; the log has it.
func classify(err error) *problem.Problem {
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return problem.New(http.StatusGatewayTimeout, "the service did not answer in time")
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		p := problem.New(http.StatusServiceUnavailable, "the service is busy; try again shortly")
		p.RetryAfter = 1
		return p
	}
	return problem.New(http.StatusBadGateway, "the service is unavailable")
}

// validTraceparent accepts a W3C trace context version 00 header; anything else is
// dropped (the spec's advice: restart the trace rather than pass on garbage).
func validTraceparent(v []byte) bool {
	if len(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	for i, b := range v {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	// All-zero trace and parent ids are invalid by the spec.
	return string(v[3:35]) != zeroTraceID && string(v[36:52]) != zeroTraceID[:16]
}

const zeroTraceID = "00000000000000000000000000000000"
