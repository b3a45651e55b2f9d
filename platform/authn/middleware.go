package authn

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// Realm is the realm named in WWW-Authenticate challenges.
const Realm = "shop"

// Middleware requires a valid bearer access token in the Authorization header and stores
// its Principal on the request. Tokens anywhere else (query string, form body, cookies) are
// ignored on purpose: they end up in logs, caches and Referer headers.
func (v *Verifier) Middleware(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		raw, ok := BearerToken(c)
		if !ok {
			return Unauthenticated("", "")
		}
		p, err := v.Verify(c.UserContext(), raw)
		if err != nil {
			log.Info("token refused", "request_id", c.Locals(problem.RequestIDKey), "reason", err.Error())
			return Unauthenticated("invalid_token", describe(err))
		}
		WithPrincipal(c, p)
		return c.Next()
	}
}

// BearerToken returns the token of an `Authorization: Bearer` header.
func BearerToken(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Unauthenticated is the 401 answer with its RFC 6750 challenge. With no code (no token
// was sent) the challenge carries no error, as RFC 6750 section 3.1 asks.
func Unauthenticated(code, description string) *problem.Problem {
	challenge := fmt.Sprintf("Bearer realm=%q", Realm)
	detail := "a bearer access token is required"
	if code != "" {
		challenge += fmt.Sprintf(", error=%q, error_description=%q", code, description)
		detail = description
	}
	return problem.New(http.StatusUnauthorized, detail).WithHeader(fiber.HeaderWWWAuthenticate, challenge)
}
