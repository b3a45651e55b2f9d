package edge

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// allowHeader is the Allow value of the gateway's 405 answers.
var allowHeader = strings.Join([]string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut,
	fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions,
}, ", ")

// Methods refuses, with 405, every method outside allowed, and OPTIONS unless it is a
// CORS preflight (which the CORS middleware after it answers). TRACE and CONNECT are the
// point: TRACE reflects the request, Authorization header included, back to whoever can
// read the response; CONNECT would open a tunnel through the gateway.
func Methods(allowed []string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		m := c.Method()
		if slices.Contains(allowed, m) ||
			(m == fiber.MethodOptions && c.Get(fiber.HeaderOrigin) != "" && c.Get(fiber.HeaderAccessControlRequestMethod) != "") {
			return c.Next()
		}
		return problem.New(http.StatusMethodNotAllowed, "method not allowed on this gateway").
			WithHeader(fiber.HeaderAllow, allowHeader)
	}
}

// Limits refuses requests whose headers (request line included) exceed headerBytes with
// 431, and whose body exceeds bodyBytes with 413. The fasthttp server enforces the
// largest limits of all routes while reading (see Harden and platform/server's
// BodyLimit); this middleware enforces each route's own, smaller ones.
//
// Compressed request bodies are refused with 415: a limit on the compressed size says
// nothing about what an upstream would inflate, and the shop's clients send plain JSON.
func Limits(headerBytes, bodyBytes int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if headerBytes > 0 && headerSize(c) > headerBytes {
			return problem.New(http.StatusRequestHeaderFieldsTooLarge, "request headers too large")
		}
		req := c.Request()
		if bodyBytes > 0 && (len(req.Body()) > bodyBytes || req.Header.ContentLength() > bodyBytes) {
			return problem.New(http.StatusRequestEntityTooLarge, "request body too large")
		}
		if ce := req.Header.Peek(fiber.HeaderContentEncoding); len(ce) > 0 && !bytes.EqualFold(bytes.TrimSpace(ce), []byte("identity")) {
			return problem.New(http.StatusUnsupportedMediaType, "compressed request bodies are not accepted")
		}
		return c.Next()
	}
}

// headerSize is the size of the request line and header block as sent, give or take the
// whitespace a client chose.
func headerSize(c *fiber.Ctx) int {
	h := &c.Request().Header
	n := len(h.Method()) + 1 + len(h.RequestURI()) + len(" HTTP/1.1\r\n") + 2
	h.VisitAll(func(k, v []byte) { n += len(k) + 2 + len(v) + 2 })
	return n
}
