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

// AccessTokenParameter is the query and form parameter RFC 6750 sections 2.2 and 2.3 define
// for sending a bearer token. The shop never accepts a token there, and refuses a request
// that sends one (see Authorization).
const AccessTokenParameter = "access_token"

// Middleware requires a valid bearer access token in the Authorization header and stores
// its Principal on the request. A request that is ambiguous about its token is refused
// with 400 before any token is looked at (see Authorization).
func (v *Verifier) Middleware(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		header, err := Authorization(c)
		if err != nil {
			return err
		}
		raw, ok := bearerToken(string(header))
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

// RefuseAmbiguous is middleware that answers 400 invalid_request to every request
// Authorization refuses, whether or not its route takes a token. The gateway runs it
// first, so that no upstream, public routes included, ever sees a second Authorization
// header or a token in the URL.
func RefuseAmbiguous() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, err := Authorization(c); err != nil {
			return err
		}
		return c.Next()
	}
}

// Authorization returns the value of the request's Authorization header, nil when there
// is none. The value is a view into the request, valid until the handler returns.
//
// It refuses, with the 400 invalid_request of RFC 6750 section 3.1, a request that could
// be read as carrying two credentials: several Authorization headers (servers and proxies
// disagree on which one counts, and fasthttp's Peek silently takes the first), or an
// access_token in the query string or an urlencoded form body (section 2 allows one
// method per request, and a token in a URL ends up in logs and Referer headers). A
// request with only such a parameter is refused too, rather than treated as carrying no
// token, so a client that sends one learns why it is not authenticated.
func Authorization(c *fiber.Ctx) ([]byte, error) {
	req := c.Request()
	// PeekAll, not Peek: every header of that name, whatever case the client wrote it in.
	values := req.Header.PeekAll(fiber.HeaderAuthorization)
	switch {
	case len(values) > 1:
		return nil, InvalidRequest("send exactly one Authorization header")
	case req.URI().QueryArgs().Has(AccessTokenParameter):
		return nil, InvalidRequest("send the access token in the Authorization header, never in the URL")
	case req.PostArgs().Has(AccessTokenParameter):
		// PostArgs reads the body only when it is application/x-www-form-urlencoded.
		return nil, InvalidRequest("send the access token in the Authorization header, never in the body")
	case len(values) == 0:
		return nil, nil
	}
	return values[0], nil
}

// BearerToken returns the token of an `Authorization: Bearer` header. It does not check
// for a second header; use it only behind Middleware, which does.
func BearerToken(c *fiber.Ctx) (string, bool) {
	return bearerToken(c.Get(fiber.HeaderAuthorization))
}

func bearerToken(h string) (string, bool) {
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

// InvalidRequest is the 400 answer to a malformed or ambiguous request for a protected
// resource, with the challenge RFC 6750 section 3.1 gives it (error invalid_request).
func InvalidRequest(description string) *problem.Problem {
	challenge := fmt.Sprintf("Bearer realm=%q, error=%q, error_description=%q", Realm, "invalid_request", description)
	return problem.BadRequest(description).WithHeader(fiber.HeaderWWWAuthenticate, challenge)
}
