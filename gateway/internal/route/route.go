// Package route is the gateway's route table: which path prefix goes to which upstream
// service, under which policy and limits, and the canonical form a path must have before
// any of that is decided.
//
// The table is declarative and small on purpose, like the services' own tables: a reviewer
// reads it as a checklist. Two rules are not written per route because they must hold for
// every route, including ones added later:
//
//   - A path is matched, authorised and forwarded only in canonical form (see Canonical);
//     anything else is refused before routing, so no spelling of a path can reach an
//     upstream route that its canonical form would refuse.
//   - Any path with an `admin` segment needs the ADMIN role and passes the admin IP
//     allowlist, whatever its route says (see IsAdmin).
package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authz"

	"example.com/shop/gateway/internal/edge"
)

// Upstream names a service the gateway forwards to; the gateway's configuration maps it
// to a base URL.
type Upstream string

// The shop's upstream services.
const (
	Order   Upstream = "order"
	Payment Upstream = "payment"
)

// RoleAdmin is the realm role every admin path needs.
const RoleAdmin = authz.RoleAdmin

// Route is one line of the table: requests whose path is Prefix or lies below it go to
// Upstream, if Policy admits the caller.
type Route struct {
	// Name identifies the route in logs and names its rate-limit policy when it has its
	// own rate.
	Name string
	// Prefix is a canonical path; the route matches it and every path below it.
	Prefix string
	// Upstream is the service the route forwards to.
	Upstream Upstream
	// Policy decides who may call the route; authz.Public routes need no token.
	Policy authz.Policy
	// Methods the route accepts; nil means every method the gateway forwards.
	Methods []string
	// Limits overrides the gateway's defaults for this route; zero fields keep them.
	Limits Limits
	// IPs are CIDR rules for this route on top of the global ones.
	IPs edge.IPRules
}

// Limits are a route's budget: rate limit and request size.
type Limits struct {
	// Rate is the sustained requests per second per caller; Burst the bucket size.
	Rate  float64
	Burst int
	// BodyBytes bounds the request body (413 above it).
	BodyBytes int
	// HeaderBytes bounds the request line plus headers (431 above it).
	HeaderBytes int
}

// ForwardedMethods are the methods the gateway forwards at all. TRACE and CONNECT are
// absent on purpose: TRACE echoes requests (credentials included) back, CONNECT would
// turn the gateway into a tunnel. OPTIONS is answered by the gateway itself (CORS).
var ForwardedMethods = []string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost,
	fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete,
}

// readOnly are the methods of the public catalog: anonymous callers can never write.
var readOnly = []string{fiber.MethodGet, fiber.MethodHead}

// Table is the shop's route table, as the API contract (docs/api-contract.md) gives it.
// The services enforce their finer per-handler policies again (defense in depth); the
// gateway's job is the coarse door: who may reach which service at all.
func Table() []Route {
	return []Route{
		{Name: "public", Prefix: "/api/public", Upstream: Order, Policy: authz.Public, Methods: readOnly},
		{Name: "admin-products", Prefix: "/api/admin/products", Upstream: Order, Policy: authz.Role(RoleAdmin)},
		{Name: "orders", Prefix: "/api/orders", Upstream: Order, Policy: authz.Authenticated()},
		// Charging cards is the costliest and most abused call: payments get a budget of
		// their own, smaller than the default, that browsing the catalog cannot use up.
		{Name: "payments", Prefix: "/api/payments", Upstream: Payment, Policy: authz.Authenticated(),
			Limits: Limits{Rate: 2, Burst: 5}},
	}
}

// Pattern is the Fiber route pattern of r. It is also the route label of the platform's
// metrics and access logs, so their cardinality is the size of the table, not the number
// of distinct paths (order ids) seen.
func (r Route) Pattern() string { return r.Prefix + "/*" }

// AllowedMethods returns the methods r accepts.
func (r Route) AllowedMethods() []string {
	if r.Methods == nil {
		return ForwardedMethods
	}
	return r.Methods
}

// Validate checks a table: every route named, canonical, under /api, with a valid policy,
// a known method set, and no prefix nested in another (Fiber matches in registration
// order, so nesting would make the order of the table decide who gets in).
func Validate(routes []Route) error {
	var errs []error
	names := map[string]bool{}
	for i, r := range routes {
		where := fmt.Sprintf("route %d (%s)", i, r.Name)
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s: no name", where))
		case names[r.Name]:
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		names[r.Name] = true
		if err := Canonical(r.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("%s: prefix %q: %w", where, r.Prefix, err))
		}
		if !strings.HasPrefix(r.Prefix, "/api/") {
			errs = append(errs, fmt.Errorf("%s: prefix %q is not under /api/", where, r.Prefix))
		}
		if !r.Policy.Valid() {
			errs = append(errs, fmt.Errorf("%s: no policy", where))
		}
		if r.Upstream == "" {
			errs = append(errs, fmt.Errorf("%s: no upstream", where))
		}
		for _, m := range r.AllowedMethods() {
			if !slices.Contains(ForwardedMethods, m) {
				errs = append(errs, fmt.Errorf("%s: method %s is never forwarded", where, m))
			}
		}
		for _, o := range routes[:i] {
			if within(r.Prefix, o.Prefix) || within(o.Prefix, r.Prefix) {
				errs = append(errs, fmt.Errorf("%s: prefix %q overlaps route %s (%q)", where, r.Prefix, o.Name, o.Prefix))
			}
		}
	}
	return errors.Join(errs...)
}

// within reports whether path is prefix or lies below it.
func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Match returns the route a canonical path belongs to. The gateway itself lets Fiber's
// router match (so the route pattern labels metrics); Match states the same rule for
// tests and tools.
func Match(routes []Route, path string) (Route, bool) {
	for _, r := range routes {
		if within(path, r.Prefix) {
			return r, true
		}
	}
	return Route{}, false
}

// IsAdmin reports whether a canonical path has an `admin` segment. Such paths need the
// ADMIN role and pass the admin IP allowlist on every route, so a new route under, say,
// /api/invoices/admin is protected without anyone remembering to say so.
func IsAdmin(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "admin" {
			return true
		}
	}
	return false
}
