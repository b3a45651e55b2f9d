// Package dpop is the gateway's half of sender-constrained tokens (RFC 9449): it accepts
// `Authorization: DPoP <token>` beside Bearer, and on every request whose token is bound
// to a key (`cnf.jkt`), or comes from a client that must bind its tokens, it demands a
// fresh proof signed by that key for this very request. platform/dpop checks the proof;
// this package decides when one is needed, finds the URL the client addressed, keeps the
// replay cache (in memory, or in Redis shared by the replicas), and answers refusals with
// the challenges of RFC 9449 section 7.
//
// It runs as two handlers around the token cache (see the app package):
//
//	Authenticate   verifies the token, either scheme   (skipped on a token-cache hit)
//	Enforce        binding rules and the proof          (never skipped)
//
// so that a cached token never skips its proof: the cache vouches for the token's
// signature, never for the request that carries it.
//
// Upstream, the token travels as `Authorization: Bearer` with the proof removed: the
// services verify tokens as before, over the internal hop the gateway alone may reach.
// A copy of that token taken from the hop is still bound, so the gateway refuses it as
// Bearer and, without the key, as DPoP (docs/architecture.md, "Token binding").
package dpop

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/dpop"
	"example.com/shop/platform/problem"

	"example.com/shop/gateway/internal/edge"
)

// Guard enforces token binding.
type Guard struct {
	proofs *dpop.Verifier
	// clients are the OAuth clients (`azp`) whose tokens must be DPoP-bound.
	clients []string
	log     *slog.Logger
}

// New returns a Guard checking proofs with proofs and requiring DPoP-bound tokens of the
// clients listed (e.g. webapp).
func New(proofs *dpop.Verifier, clients []string, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.Default()
	}
	return &Guard{proofs: proofs, clients: slices.Clone(clients), log: log}
}

// credential is the scheme and token of an Authorization header value.
type credential struct {
	scheme string // "Bearer" or "DPoP", as the constants spell them
	token  string
}

// parse reads `Bearer <token>` or `DPoP <token>`; the scheme is case-insensitive (RFC
// 9110 section 11.1).
func parse(header []byte) (credential, bool) {
	scheme, token, found := strings.Cut(string(header), " ")
	token = strings.TrimSpace(token)
	if !found || token == "" {
		return credential{}, false
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return credential{"Bearer", token}, true
	case strings.EqualFold(scheme, dpop.Scheme):
		return credential{dpop.Scheme, token}, true
	}
	return credential{}, false
}

// Authenticate replaces platform/authn's middleware at the gateway: the same token
// checks, for a token sent with either scheme. Refusals of the token itself are
// authn's; whether the scheme suits the token is Enforce's question.
func (g *Guard) Authenticate(v *authn.Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		header, err := authn.Authorization(c)
		if err != nil {
			return err
		}
		cred, ok := parse(header)
		if !ok {
			return g.challenge("", "", "a bearer or DPoP access token is required")
		}
		p, err := v.Verify(c.UserContext(), cred.token)
		if err != nil {
			g.log.Info("token refused", "request_id", c.Locals(problem.RequestIDKey), "reason", err.Error())
			return g.challenge(cred.scheme, dpop.CodeInvalidToken, authn.Describe(err))
		}
		authn.WithPrincipal(c, p)
		return c.Next()
	}
}

// Enforce runs after the token is known good (verified now or found in the cache) and
// decides the request by its binding:
//
//   - a bound token (`cnf.jkt`) must come with the DPoP scheme and a valid proof signed by
//     its key: sent as Bearer it is refused, whoever sends it;
//   - a token of a client that must bind its tokens is refused unless bound;
//   - the DPoP scheme with an unbound token is refused (the proof would prove nothing);
//   - other bearer tokens (service accounts, test clients) pass as before.
//
// A request that passes goes upstream as Bearer, without its DPoP header.
func (g *Guard) Enforce(c *fiber.Ctx) error {
	p, ok := authn.PrincipalFrom(c)
	if !ok {
		return c.Next()
	}
	header, err := authn.Authorization(c)
	if err != nil {
		return err
	}
	cred, _ := parse(header)
	switch {
	case cred.scheme == "Bearer" && p.KeyBound != "":
		g.refused(c, p, "a DPoP-bound token sent as Bearer")
		return g.challenge("Bearer", dpop.CodeInvalidToken, "this access token is bound to a key: send it with the DPoP scheme and a proof")
	case cred.scheme == "Bearer" && slices.Contains(g.clients, p.ClientID):
		g.refused(c, p, "an unbound token of a client that must use DPoP")
		return g.challenge("Bearer", dpop.CodeInvalidToken, "tokens of this client must be DPoP-bound")
	case cred.scheme == "Bearer":
		c.Request().Header.Del(dpop.Header)
		return c.Next()
	case p.KeyBound == "":
		return g.challenge(dpop.Scheme, dpop.CodeInvalidToken, "this access token is not bound to a key: send it as Bearer")
	}
	proofs := c.Request().Header.PeekAll(dpop.Header)
	if len(proofs) > 1 {
		return g.challenge(dpop.Scheme, dpop.CodeInvalidProof, "send exactly one DPoP header")
	}
	var proof string
	if len(proofs) == 1 {
		proof = string(proofs[0])
	}
	cl := edge.ClientFrom(c)
	if cl.Host == "" {
		return g.challenge(dpop.Scheme, dpop.CodeInvalidProof, "the request names no valid host to check the proof's htu against")
	}
	_, err = g.proofs.Verify(c.UserContext(), dpop.Request{
		Proof: proof, Method: c.Method(), URL: cl.Proto + "://" + cl.Host + c.Path(),
		AccessToken: cred.token, BoundTo: p.KeyBound,
	})
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		g.refused(c, p, de.Description)
		return g.challenge(dpop.Scheme, de.Code, de.Description)
	case errors.Is(err, dpop.ErrReplayCheck):
		g.log.Error("dpop replay cache unavailable", "request_id", c.Locals(problem.RequestIDKey), "err", err)
		// Letting the proof in unchecked would let a replay in; refusing it with a retry
		// keeps the binding whole at the cost of a moment's availability.
		return problem.New(http.StatusServiceUnavailable, "the request could not be checked just now; try again").
			WithHeader(fiber.HeaderRetryAfter, "1")
	case err != nil:
		return g.challenge(dpop.Scheme, dpop.CodeInvalidProof, "the proof could not be checked")
	}
	h := &c.Request().Header
	h.Set(fiber.HeaderAuthorization, "Bearer "+cred.token)
	h.Del(dpop.Header)
	return c.Next()
}

func (g *Guard) refused(c *fiber.Ctx, p *authn.Principal, why string) {
	g.log.Info("dpop refused", "request_id", c.Locals(problem.RequestIDKey), "sub", p.Subject, "client", p.ClientID, "reason", why)
}

// challenge is the 401 with both schemes' challenges in one WWW-Authenticate header, as
// RFC 9449 section 7.2 has a server that takes both answer: the Bearer one of RFC 6750,
// then the DPoP one with the algorithms proofs may use. The error goes in the challenge
// of the scheme the request used; with no scheme (no token sent) neither carries one.
func (g *Guard) challenge(scheme, code, description string) *problem.Problem {
	bearer := fmt.Sprintf("Bearer realm=%q", authn.Realm)
	proof := fmt.Sprintf("DPoP algs=%q", g.proofs.Algorithms())
	errParams := fmt.Sprintf(", error=%q, error_description=%q", code, description)
	switch {
	case code == "":
	case scheme == dpop.Scheme:
		proof += errParams
	default:
		bearer += errParams
	}
	return problem.New(http.StatusUnauthorized, description).WithHeader(fiber.HeaderWWWAuthenticate, bearer+", "+proof)
}
