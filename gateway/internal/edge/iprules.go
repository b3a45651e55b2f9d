package edge

import (
	"net/netip"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// IPRules are CIDR allow and deny lists. Deny wins; an empty Allow admits every address
// that Deny does not name.
type IPRules struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
}

// Permits reports whether ip passes the rules. An invalid address (one that could not be
// determined) passes no allowlist.
func (r IPRules) Permits(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range r.Deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(r.Allow) == 0 {
		return true
	}
	for _, p := range r.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Empty reports whether the rules admit every address.
func (r IPRules) Empty() bool { return len(r.Allow) == 0 && len(r.Deny) == 0 }

// Middleware refuses, with 403, clients whose address (as ClientFrom resolves it) the
// rules do not permit. when, if not nil, limits the rules to the requests it selects.
func (r IPRules) Middleware(when func(*fiber.Ctx) bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if (when == nil || when(c)) && !r.Permits(ClientFrom(c).IP) {
			return problem.Forbidden("requests from your network are not allowed here")
		}
		return c.Next()
	}
}
