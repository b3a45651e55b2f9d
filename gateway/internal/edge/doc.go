// Package edge holds the gateway's rules about the connection and the request envelope,
// checked before any token is looked at: who the client is (trusted proxies and
// X-Forwarded-For), IP allow and deny lists, CORS, request size, methods, and the security
// headers of every response.
//
// Each rule is Fiber middleware that answers a refusal as problem+json through the
// platform's ErrorHandler, so refusals are logged and counted like any other answer.
package edge
