// Package authz holds the composable authorisation policies of the shop's route tables:
// the Go form of Spring's @PreAuthorize, declared next to each route so the table reads
// like a checklist.
//
// A policy runs after authentication. A caller without a token gets 401 from authn; a
// caller whose token does not satisfy the policy gets 403 (with `insufficient_scope` when a
// scope is missing); a caller asking for someone else's resource gets 404, so a shopper
// cannot learn which order ids exist.
package authz

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
)

// RoleAdmin is the realm role that passes AdminOrOwner without owning the resource.
const RoleAdmin = "ADMIN"

// Policy decides whether a request may reach its handler. The zero Policy is invalid:
// Mount refuses it, so a route can never be left open by forgetting its policy.
type Policy struct {
	name   string
	public bool
	check  func(c *fiber.Ctx, p *authn.Principal) error
}

// String names the policy, e.g. `role(ADMIN)` or `anyOf(role(ADMIN), scope(admin:read))`.
func (p Policy) String() string { return p.name }

// IsPublic reports whether the route needs no token at all.
func (p Policy) IsPublic() bool { return p.public }

// Valid reports whether p was built by one of this package's constructors.
func (p Policy) Valid() bool { return p.public || p.check != nil }

// Public lets anyone in, with or without a token. Routes say it out loud.
var Public = Policy{name: "public", public: true}

// Authenticated admits any valid token.
func Authenticated() Policy {
	return Policy{name: "authenticated", check: func(*fiber.Ctx, *authn.Principal) error { return nil }}
}

// Role admits principals holding the realm role.
func Role(role string) Policy {
	return Policy{name: "role(" + role + ")", check: func(_ *fiber.Ctx, p *authn.Principal) error {
		if p.HasRole(role) {
			return nil
		}
		return problem.Forbidden("this action needs the " + role + " role")
	}}
}

// Scope admits tokens granted the scope; others get 403 with an RFC 6750
// `insufficient_scope` challenge naming it.
func Scope(scope string) Policy {
	return Policy{name: "scope(" + scope + ")", check: func(_ *fiber.Ctx, p *authn.Principal) error {
		if p.HasScope(scope) {
			return nil
		}
		return InsufficientScope(scope)
	}}
}

// InsufficientScope is the 403 answer for a token that lacks scope.
func InsufficientScope(scope string) *problem.Problem {
	return problem.New(http.StatusForbidden, "this action needs the "+scope+" scope").
		WithHeader(fiber.HeaderWWWAuthenticate,
			fmt.Sprintf("Bearer realm=%q, error=\"insufficient_scope\", scope=%q", authn.Realm, scope))
}

// AnyOf admits a caller that satisfies at least one of ps; otherwise it answers with the
// first policy's refusal.
func AnyOf(ps ...Policy) Policy {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return Policy{name: "anyOf(" + strings.Join(names, ", ") + ")", check: func(c *fiber.Ctx, pr *authn.Principal) error {
		var first error
		for _, p := range ps {
			err := p.authorize(c, pr)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return first
	}}
}

// Owner loads the resource a route addresses and returns the subject that owns it. It
// returns an error the service maps to 404 when there is no such resource, and may store
// what it loaded in c.Locals so the handler does not load it twice.
type Owner func(c *fiber.Ctx) (ownerSubject string, err error)

// AdminOrOwner admits ADMIN, and the principal whose subject owns the resource. Anyone else
// gets 404, the same answer as for a resource that does not exist: a shopper probing ids
// learns nothing.
func AdminOrOwner(owner Owner) Policy {
	return Policy{name: "adminOrOwner", check: func(c *fiber.Ctx, p *authn.Principal) error {
		subject, err := owner(c)
		if err != nil {
			return err
		}
		if p.HasRole(RoleAdmin) || subject == p.Subject {
			return nil
		}
		return problem.NotFound("no such resource")
	}}
}

func (p Policy) authorize(c *fiber.Ctx, pr *authn.Principal) error {
	if p.public {
		return nil
	}
	if pr == nil {
		return authn.Unauthenticated("", "")
	}
	return p.check(c, pr)
}

// Handler enforces p on a request that authentication has already seen.
func (p Policy) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		pr, _ := authn.PrincipalFrom(c)
		if err := p.authorize(c, pr); err != nil {
			return err
		}
		return c.Next()
	}
}
