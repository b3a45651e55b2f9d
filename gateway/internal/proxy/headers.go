package proxy

import (
	"bytes"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/gateway/internal/edge"
)

// hopByHop are the headers of one connection, not of the message (RFC 9110 section 7.6.1),
// plus Proxy-Authorization, which is a credential for this hop only.
var hopByHop = []string{
	fiber.HeaderConnection, fiber.HeaderKeepAlive, fiber.HeaderTE, fiber.HeaderTrailer,
	fiber.HeaderTransferEncoding, fiber.HeaderUpgrade, fiber.HeaderProxyAuthorization,
	fiber.HeaderProxyAuthenticate, "Proxy-Connection",
}

// setByGateway are request headers the gateway writes itself; a client's value is
// dropped, never merged. Host and Content-Length follow from the upstream URL and body;
// Expect is answered by the gateway, which has read the whole body before forwarding.
var setByGateway = []string{
	fiber.HeaderHost, fiber.HeaderContentLength, fiber.HeaderExpect, fiber.HeaderXRequestID,
	"Traceparent", "Tracestate",
}

// spoofable are request headers through which a client could claim an identity, an
// address, a scheme or a different request than the one authorised. Upstreams trust
// nothing of the sort from the gateway today; stripping them means no upstream, now or
// later, can be talked into it by a client.
var spoofable = []string{
	fiber.HeaderForwarded, "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip",
	"Fastly-Client-Ip", "X-Cluster-Client-Ip", "X-Roles", "X-Role", "X-Scopes", "X-Subject",
	"X-Principal", "X-Remote-User", "Remote-User", "X-Userinfo", "X-Url-Scheme",
	// Path and method overrides some frameworks honour ahead of the request line.
	"X-Original-Url", "X-Rewrite-Url", "X-Override-Url", "X-Http-Method-Override",
	"X-Http-Method", "X-Method-Override",
	// The API authenticates with bearer tokens only; a cookie is an ambient credential
	// a browser attaches on its own, which is what CSRF abuses.
	fiber.HeaderCookie,
}

// spoofablePrefixes cover whole families: X-Forwarded-* (the gateway sets For, Proto and
// Host itself from what it can vouch for), identity headers such as X-User-Id, and
// X-Original-* / X-Auth-* variants.
var spoofablePrefixes = []string{"X-Forwarded-", "X-User-", "X-Auth-", "X-Original-", "X-Envoy-", "X-Amzn-"}

// forwardRequestHeader reports whether a client request header goes upstream.
func forwardRequestHeader(k []byte) bool {
	return !in(k, hopByHop) && !in(k, setByGateway) && !in(k, spoofable) && !hasPrefix(k, spoofablePrefixes)
}

// dropResponse are upstream response headers the caller never sees: hop-by-hop ones,
// those naming the upstream's software, and Date (the gateway writes its own).
var dropResponse = []string{fiber.HeaderServer, fiber.HeaderXPoweredBy, fiber.HeaderDate, fiber.HeaderContentLength}

// forwardResponseHeader reports whether an upstream response header goes to the caller.
// The gateway owns security headers (edge.OwnedResponseHeaders), CORS (an upstream must
// not widen the allowlist), rate-limit headers and the request id.
func forwardResponseHeader(k []byte) bool {
	return !in(k, hopByHop) && !in(k, dropResponse) && !in(k, edge.OwnedResponseHeaders) &&
		!hasPrefix(k, []string{"Access-Control-", "Ratelimit"}) && !equalFold(k, fiber.HeaderXRequestID)
}

// tokens is the list of header names a Connection header declares hop-by-hop.
type tokens [][]byte

// collect adds the names a header lists if it is a Connection header. It is called for
// every header of a message (VisitAll), because Peek is not enough: fasthttp keeps
// "close" as a flag and would hide a second Connection header behind it.
func (t *tokens) collect(k, v []byte) {
	if !equalFold(k, fiber.HeaderConnection) {
		return
	}
	for f := range bytes.SplitSeq(v, []byte(",")) {
		if f = bytes.TrimSpace(f); len(f) > 0 && !equalFold(f, "close") && !equalFold(f, "keep-alive") {
			// Copied: fasthttp reuses the value's buffer after the visit.
			*t = append(*t, bytes.Clone(f))
		}
	}
}

func (t tokens) has(k []byte) bool {
	for _, n := range t {
		if bytes.EqualFold(n, k) {
			return true
		}
	}
	return false
}

func in(k []byte, names []string) bool {
	for _, n := range names {
		if len(k) == len(n) && equalFold(k, n) {
			return true
		}
	}
	return false
}

func hasPrefix(k []byte, prefixes []string) bool {
	for _, p := range prefixes {
		if len(k) >= len(p) && equalFold(k[:len(p)], p) {
			return true
		}
	}
	return false
}

// equalFold compares an ASCII header name without converting it to a string: this runs
// for every header of every request.
func equalFold(k []byte, s string) bool {
	if len(k) != len(s) {
		return false
	}
	for i := range len(k) {
		a, b := k[i], s[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
