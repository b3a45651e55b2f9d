package svcauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/problem"
)

// RoleService is the realm role of the services' own accounts (client credentials), which
// every internal route requires: a shopper's or an admin's token, whatever its audience,
// is refused with 403.
const RoleService = "SERVICE"

// Route is one line of an internal listener's route table: a call other services make with
// no user behind them.
type Route struct {
	Method string
	Path   string
	// Callers are the SPIFFE ids (mtls.ID) of the services allowed to make the call. Each
	// must prove it twice: with its certificate and with its own client-credentials token.
	Callers []string
	Handler fiber.Handler
}

// Mount registers routes on r, each behind Guard(authenticate, its callers). r must be
// served behind mutual TLS (mtls.Identity.ServerConfig). Like authz.Mount, it panics on a
// route Guard refuses: a mistake in a route table must stop the service at start-up.
func Mount(r fiber.Router, authenticate fiber.Handler, routes []Route) {
	for _, rt := range routes {
		guard, err := guard(authenticate, rt.Callers)
		if err != nil {
			panic(fmt.Sprintf("svcauth: route %s %s: %v", rt.Method, rt.Path, err))
		}
		r.Add(rt.Method, rt.Path, append(guard, rt.Handler)...)
	}
}

// Guard returns the checks an internal route makes before its handler, in this order:
//
//  1. the client certificate's SPIFFE id is one of callers (mtls.Allow; 403),
//  2. the bearer token is valid (authenticate, the authn middleware with the service's own
//     name among the accepted audiences; 401),
//  3. the token holds RoleService (403),
//  4. the token was issued to the service the certificate names (ClientIDOf; 403).
//
// The certificate is checked first, so a caller without an allowed one learns nothing about
// tokens. Guard panics when callers is empty (the route could never be called) or holds
// something that is not a service's SPIFFE id (its token could never match).
func Guard(authenticate fiber.Handler, callers ...string) []fiber.Handler {
	guard, err := guard(authenticate, callers)
	if err != nil {
		panic("svcauth: " + err.Error())
	}
	return guard
}

func guard(authenticate fiber.Handler, callers []string) ([]fiber.Handler, error) {
	if len(callers) == 0 {
		return nil, errors.New("no caller is allowed")
	}
	for _, id := range callers {
		if _, ok := ClientIDOf(id); !ok {
			return nil, fmt.Errorf("caller %q is not a SPIFFE id like %s", id, mtls.ID("<service>"))
		}
	}
	return []fiber.Handler{mtls.Allow(callers...), authenticate, authz.Role(RoleService).Handler(), sameService}, nil
}

// ClientIDOf is the mapping from certificates to tokens: the Keycloak client (a token's
// `azp`) of the service whose certificate carries the SPIFFE id peerID. It is a naming rule
// rather than a table, spiffe://shop/<name> to client <name>, which `make certs` and the
// realm (keycloak/realm/shop-realm.json) both follow: spiffe://shop/payment-service is the
// client payment-service. ok is false for an id of another trust domain or not of the form
// spiffe://shop/<name>.
func ClientIDOf(peerID string) (clientID string, ok bool) {
	name, ok := strings.CutPrefix(peerID, "spiffe://"+mtls.TrustDomain+"/")
	if !ok || name == "" || strings.ContainsAny(name, "/?#") {
		return "", false
	}
	return name, true
}

// sameService admits a request only when its token was issued to the service its
// certificate names (ClientIDOf).
//
// Either credential alone can leak: a token sits in memory and in transit for minutes, a
// key on a disk. Binding them means that a thief needs both, of the same service: a
// payment-service token replayed from another workload's connection is refused, and so is
// a valid certificate carrying a token some other service was given. Each route's caller
// list then holds for the token as well as for the certificate.
func sameService(c *fiber.Ctx) error {
	if p, ok := authn.PrincipalFrom(c); ok && p.ClientID != "" {
		for _, peer := range mtls.PeerIDs(c) {
			if client, ok := ClientIDOf(peer); ok && client == p.ClientID {
				return c.Next()
			}
		}
	}
	return problem.Forbidden("the token was not issued to the service this certificate belongs to")
}
