package authn

import (
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Principal is the caller a verified access token describes.
type Principal struct {
	// Subject is the token's `sub`: the stable id of the user or service account. Ownership
	// is always decided on it, never on a name or a field of a request body.
	Subject string
	// Username is Keycloak's `preferred_username`, for display and logs only.
	Username string
	// ClientID is the OAuth client the token was issued to (`azp`).
	ClientID string
	// Roles are the realm roles from `realm_access.roles`.
	Roles []string
	// Scopes are the granted scopes from the space-separated `scope` claim.
	Scopes []string
	// SessionID is Keycloak's `sid`, empty for client-credentials tokens.
	SessionID string
	// Expiry is the token's `exp`.
	Expiry time.Time
	// KeyBound is the token's `cnf.jkt` (RFC 9449 section 6): the thumbprint of the DPoP key
	// the token is bound to, empty for a bearer token. A bound token is good only with a
	// proof signed by that key; Verify does not check proofs, the gateway does.
	KeyBound string
}

// HasRole reports whether the principal holds the realm role.
func (p *Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// HasScope reports whether the token was granted the scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

const principalKey = "shop.authn.principal"

// WithPrincipal stores p on the request, for middleware that authenticates by other means
// than Middleware (tests, a token cache).
func WithPrincipal(c *fiber.Ctx, p *Principal) { c.Locals(principalKey, p) }

// PrincipalFrom returns the principal Middleware stored on the request, if any.
func PrincipalFrom(c *fiber.Ctx) (*Principal, bool) {
	p, ok := c.Locals(principalKey).(*Principal)
	return p, ok && p != nil
}
