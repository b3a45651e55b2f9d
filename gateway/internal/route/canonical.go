package route

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// MaxPathBytes bounds a path; the shop's longest real path is well under 100 bytes.
const MaxPathBytes = 1024

// Reasons a path is not canonical. They are safe to show the caller: they name the rule,
// never echo the input.
var (
	ErrNotAbsolute  = errors.New("the path must start with /")
	ErrTooLong      = errors.New("the path is too long")
	ErrEmptySegment = errors.New("the path has an empty segment (// or a trailing slash)")
	ErrDotSegment   = errors.New("the path has a . or .. segment")
	ErrPercent      = errors.New("the path is percent-encoded; API paths never need it")
	ErrUpperCase    = errors.New("the path has upper-case letters; API paths are lower case")
	ErrBadCharacter = errors.New("the path has a character API paths never use")
)

// Canonical reports whether path, exactly as the client sent it (before any decoding), is
// in the one form the gateway matches and forwards: "/" followed by non-empty segments of
// lower-case letters, digits and - . _ ~, none of them "." or "..", and no trailing slash.
//
// The gateway refuses every other spelling rather than rewriting it. Rewriting means
// deciding what `%2e%2e`, `%252f`, `\`, `;jsessionid` or `//` mean, and each upstream
// framework decides differently (that gap is how gateway bypasses happen). An allowlist
// of bytes needs no such decision: percent signs, backslashes, semicolons, control bytes
// and non-ASCII are simply not in it, so double encoding and overlong UTF-8 never get a
// chance to be decoded by anyone. The price is that a client must spell paths exactly, as
// the API contract does; a path that ever needs more characters widens this list on
// purpose, with a test.
func Canonical(path string) error {
	if len(path) == 0 || path[0] != '/' {
		return ErrNotAbsolute
	}
	if len(path) > MaxPathBytes {
		return ErrTooLong
	}
	if path == "/" {
		return nil
	}
	segStart := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			if err := checkByte(path[i]); err != nil {
				return err
			}
			continue
		}
		switch seg := path[segStart:i]; seg {
		case "":
			return ErrEmptySegment
		case ".", "..":
			return ErrDotSegment
		}
		segStart = i + 1
	}
	return nil
}

func checkByte(b byte) error {
	switch {
	case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
		return nil
	case 'A' <= b && b <= 'Z':
		return ErrUpperCase
	case b == '%':
		return ErrPercent
	}
	return ErrBadCharacter
}

// CanonicalOnly refuses, with 400, every request whose path is not canonical. It runs
// before routing, so Fiber's router, the policies and the proxy only ever see canonical
// paths.
func CanonicalOnly() fiber.Handler {
	return func(c *fiber.Ctx) error {
		// c.Path is the path exactly as received: Fiber routes on it undecoded (unlike
		// fasthttp's URI.Path, which decodes and resolves dot segments).
		if err := Canonical(c.Path()); err != nil {
			return problem.BadRequest(err.Error())
		}
		return c.Next()
	}
}
