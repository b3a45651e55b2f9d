package edge

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Client is what the gateway believes about the origin of a request.
type Client struct {
	// IP is the client's address: the TCP peer, or, when the peer is a trusted proxy, the
	// rightmost X-Forwarded-For hop that is not a trusted proxy. Rate limits and IP rules
	// use it. It is invalid only if the peer address could not be read.
	IP netip.Addr
	// Hops are the addresses from IP to the peer, in X-Forwarded-For order: the part of
	// the chain the gateway can vouch for. Entries left of IP were written by the client
	// and are dropped.
	Hops []netip.Addr
	// Proto is the scheme the client used: "https" or "http".
	Proto string
	// Host is the host the client asked for.
	Host string
}

// ForwardedFor renders Hops as an X-Forwarded-For value.
func (c Client) ForwardedFor() string {
	var b strings.Builder
	for i, h := range c.Hops {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.String())
	}
	return b.String()
}

const clientKey = "shop.gateway.client"

// ClientFrom returns the client Forwarding resolved for the request.
func ClientFrom(c *fiber.Ctx) Client {
	cl, _ := c.Locals(clientKey).(*Client)
	if cl == nil {
		return Client{}
	}
	return *cl
}

// TrustedProxies are the networks whose forwarding headers the gateway believes: load
// balancers, ingress controllers, and the webapp when it forwards a browser's address.
type TrustedProxies []netip.Prefix

func (t TrustedProxies) trusts(ip netip.Addr) bool {
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Resolve finds the client behind peer given the X-Forwarded-For values in the order
// received. It walks the chain from the right: each hop was written by the hop to its
// right, so a hop is believed only while the one that wrote it is a trusted proxy. The
// first untrusted address is the client; whatever stands left of it is the client's own
// claim, which is how spoofing X-Forwarded-For fails to buy a fresh rate-limit budget or
// pass an allowlist. A malformed hop stops the walk at the last address believed.
func (t TrustedProxies) Resolve(peer netip.Addr, xff []string) Client {
	peer = peer.Unmap()
	hops := []netip.Addr{peer} // right to left
	client := peer
walk:
	for i := len(xff) - 1; i >= 0 && t.trusts(client); i-- {
		entries := strings.Split(xff[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			if !t.trusts(client) {
				break walk
			}
			ip, ok := parseHop(entries[j])
			if !ok {
				break walk
			}
			client = ip
			hops = append(hops, ip)
		}
	}
	for i, j := 0, len(hops)-1; i < j; i, j = i+1, j-1 {
		hops[i], hops[j] = hops[j], hops[i]
	}
	return Client{IP: client, Hops: hops}
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a port or, for
// IPv6, in brackets, as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardingHeaders are the request headers through which a client could tell Fiber, the
// gateway or an upstream where it connects from or which scheme it used.
var forwardingHeaders = []string{
	fiber.HeaderForwarded, fiber.HeaderXForwardedHost, fiber.HeaderXForwardedProto,
	fiber.HeaderXForwardedProtocol, fiber.HeaderXForwardedSsl, fiber.HeaderXUrlScheme,
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip",
}

// Forwarding resolves the request's Client (see Resolve) and stores it for ClientFrom.
// From a peer that is not a trusted proxy it also deletes every forwarding header from
// the request in place, so nothing downstream (Fiber's own Protocol and Hostname, which
// trust these headers by default, the HSTS decision, the proxy) can be misled by
// them. It must run first.
func (t TrustedProxies) Forwarding() fiber.Handler {
	return func(c *fiber.Ctx) error {
		peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
		h := &c.Request().Header
		cl := Client{IP: peer.Unmap(), Hops: []netip.Addr{peer.Unmap()}}
		trusted := t.trusts(cl.IP)
		if trusted {
			var xff []string
			for _, v := range h.PeekAll(fiber.HeaderXForwardedFor) {
				xff = append(xff, string(v))
			}
			cl = t.Resolve(peer, xff)
		}
		cl.Proto = "http"
		if c.Context().IsTLS() {
			cl.Proto = "https"
		}
		cl.Host = string(h.Host())
		if trusted {
			if p := firstValue(h.Peek(fiber.HeaderXForwardedProto)); p == "https" || p == "http" {
				cl.Proto = p
			}
			if host := firstValue(h.Peek(fiber.HeaderXForwardedHost)); host != "" {
				cl.Host = host
			}
		} else {
			h.Del(fiber.HeaderXForwardedFor)
			for _, name := range forwardingHeaders {
				h.Del(name)
			}
		}
		if !validHost(cl.Host) {
			cl.Host = ""
		}
		c.Locals(clientKey, &cl)
		return c.Next()
	}
}

func firstValue(v []byte) string {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(string(bytes.TrimSpace(v)))
}

// validHost accepts a host[:port] of the characters host names and IP literals use, so
// X-Forwarded-Host never carries anything an upstream could be tricked by when it builds
// a URL.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '.' || b == '-' || b == ':' || b == '[' || b == ']') {
			return false
		}
	}
	return true
}
