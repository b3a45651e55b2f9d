package edge

import (
	"fmt"
	"net/netip"
	"strings"

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

// ParsePrefixes parses CIDRs such as 10.0.0.0/8 or 2001:db8::/32; a bare address stands
// for itself (/32 or /128). It returns every malformed entry at once.
func ParsePrefixes(list []string) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%q is neither a CIDR nor an address", s))
				continue
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not a CIDR", s))
			continue
		}
		// Masked: 10.1.2.3/8 is read as 10.0.0.0/8, which is what the writer meant.
		out = append(out, p.Masked())
	}
	return out, errs
}
