package edge

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"

	"example.com/shop/platform/problem"
)

// CORS returns the gateway's cross-origin handling for an allowlist of exact origins
// (scheme://host[:port]), to mount before the routes.
//
// The first handler refuses, with 403, any request that carries an Origin not on the
// list, preflight or not: CORS itself only stops a browser from reading an answer, and the
// gateway's job is that the request never reaches an upstream at all. Origins are
// compared whole, so `null` (sandboxed frames, file: pages), look-alikes such as
// https://shop.example.evil.com and other schemes or ports never match. Requests without
// Origin (the webapp's server, curl) are untouched.
//
// The second is Fiber's cors middleware, which answers preflights and sets the
// Access-Control headers for listed origins only, echoing the one origin that matched,
// never `*`. Credentials are not allowed: the API takes bearer tokens, never cookies, so a
// browser has no ambient credential to send.
func CORS(origins []string) []fiber.Handler {
	allowed := make([]string, len(origins))
	for i, o := range origins {
		allowed[i] = strings.ToLower(o)
	}
	guard := func(c *fiber.Ctx) error {
		origin := c.Get(fiber.HeaderOrigin)
		if origin == "" || slices.Contains(allowed, strings.ToLower(origin)) {
			return c.Next()
		}
		c.Vary(fiber.HeaderOrigin)
		return problem.Forbidden("cross-origin requests from this origin are not allowed")
	}
	if len(allowed) == 0 {
		// With no origin listed, Fiber's cors would fall back to `*`; only the guard runs.
		return []fiber.Handler{guard}
	}
	return []fiber.Handler{guard, cors.New(cors.Config{
		AllowOrigins:     strings.Join(allowed, ","),
		AllowMethods:     "GET,HEAD,POST,PUT,PATCH,DELETE",
		AllowHeaders:     "Authorization,Content-Type,Idempotency-Key,X-Request-Id,Traceparent,Tracestate",
		ExposeHeaders:    "X-Request-Id,Retry-After,RateLimit,RateLimit-Policy,Location,WWW-Authenticate",
		AllowCredentials: false,
		MaxAge:           600,
	})}
}

// ValidateOrigins checks a CORS allowlist: each entry an http(s) origin with a host and
// nothing else (no path, query, user info or wildcard), so what the operator wrote is
// exactly what is compared.
func ValidateOrigins(origins []string) []error {
	var errs []error
	for _, o := range origins {
		u, err := url.Parse(o)
		switch {
		case o == "*" || strings.Contains(o, "*"):
			errs = append(errs, fmt.Errorf("%q: wildcards are not allowed; list each origin", o))
		case o == "null":
			errs = append(errs, errors.New(`"null" is not an origin a page of the shop can have`))
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("%q is not an origin (scheme://host[:port])", o))
		case u.Path == "/":
			errs = append(errs, fmt.Errorf("%q: an origin has no trailing slash", o))
		}
	}
	return errs
}
