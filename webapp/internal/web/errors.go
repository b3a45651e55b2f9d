package web

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
)

// pageError is an error a person sees as a page: what happened and what to do now.
type pageError struct {
	Status  int
	Heading string
	Message string
	Fields  []gateway.FieldError
	// RetryAfter is the wait, in seconds, a 429 asks for.
	RetryAfter int
	// Retry links to a page worth reloading; Back to the page to go back to.
	Retry, Back string
	// LoginAgain offers a login link.
	LoginAgain bool
	// SupportCode is what a shopper quotes to support: the first eight hex digits of the
	// request's trace id, in two groups ("4BF9-2F35"), enough for an operator to find the
	// trace_id in the logs and from there the whole trace. Empty when tracing is off.
	SupportCode string
}

func (e *pageError) Error() string { return strconv.Itoa(e.Status) + " " + e.Heading }

func forbidden(msg string) *pageError {
	return &pageError{Status: fiber.StatusForbidden, Heading: "Not allowed", Message: msg}
}

func notFound() *pageError {
	return &pageError{Status: fiber.StatusNotFound, Heading: "Not found",
		Message: "There is nothing here. It may have been removed, or the link is wrong."}
}

func unavailable(msg string) *pageError {
	return &pageError{Status: fiber.StatusServiceUnavailable, Heading: "Please try again", Message: msg}
}

// errorPages renders every error the routes return as an HTML page with the right status.
// Errors it does not know are logged and shown as a plain apology, never with details.
func (h *handlers) errorPages(c *fiber.Ctx) error {
	err := c.Next()
	if err == nil {
		return nil
	}
	var pe *pageError
	var fe *fiber.Error
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &fe) && fe.Code == fiber.StatusNotFound:
		pe = notFound()
	case errors.As(err, &fe) && fe.Code < 500:
		pe = &pageError{Status: fe.Code, Heading: "This request cannot be handled",
			Message: "The request was not understood. Go back and try again."}
	default:
		h.Log.ErrorContext(c.UserContext(), "unexpected error", "request_id", c.Locals(problem.RequestIDKey), "method", c.Method(), "path", c.Path(), "err", err)
		pe = &pageError{Status: fiber.StatusInternalServerError, Heading: "Something went wrong",
			Message: "Something went wrong on our side. It has been logged. Nothing was lost; please try again."}
	}
	if pe.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(pe.RetryAfter))
	}
	shown := *pe // pe may be a value the handler keeps; the code is this request's
	shown.SupportCode = supportCode(problem.TraceID(c))
	return h.render(c, page{name: "error", title: pe.Heading, status: pe.Status, data: &shown})
}

// supportCode is the short, readable form of traceID a shopper can read out or type: its
// first eight hex digits, upper case, in two groups of four. "" for no trace.
func supportCode(traceID string) string {
	if len(traceID) < 8 {
		return ""
	}
	return strings.ToUpper(traceID[:4] + "-" + traceID[4:8])
}

// apiError turns a failed API call into what the user needs: log in again on 401, a page
// that says what happened and what to do for the rest. Form handlers deal with 402, 409
// and 422 themselves where they can show the problem next to the form.
func (h *handlers) apiError(c *fiber.Ctx, err error) error {
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		return err
	}
	back := returnPath(c)
	switch s := ge.Status; {
	case s == fiber.StatusUnauthorized:
		// The token was refused although it was fresh (revoked, or keys rotated): the only
		// fix is a new login. The cart stays in the session.
		st := session.From(c)
		st.LogOut()
		return h.toLogin(c, "Your session has ended. Please log in again.")
	case s == fiber.StatusForbidden:
		return forbidden("You are not allowed to do that.")
	case s == fiber.StatusNotFound:
		return notFound()
	case s == fiber.StatusConflict || s == fiber.StatusUnprocessableEntity || s == fiber.StatusBadRequest:
		return &pageError{Status: s, Heading: "Please check and try again", Message: orDefault(ge.Detail, "The request could not be completed as it is."), Fields: ge.Fields, Back: back}
	case s == fiber.StatusPaymentRequired:
		return &pageError{Status: s, Heading: "Payment declined", Message: "Your card was declined. " + declineSentence(ge.Reason), Back: back}
	case s == fiber.StatusTooManyRequests:
		wait := max(int(ge.RetryAfter.Seconds()), 1)
		return &pageError{Status: s, Heading: "Slow down", Message: "You are going faster than the shop allows.", RetryAfter: wait, Back: back}
	case s == fiber.StatusRequestEntityTooLarge:
		return &pageError{Status: s, Heading: "Too much at once", Message: "What you sent is too large.", Back: back}
	default:
		h.Log.WarnContext(c.UserContext(), "API call failed", "request_id", c.Locals(problem.RequestIDKey), "status", s, "err", err)
		pe := unavailable("The shop is having trouble right now. Nothing was lost: your cart is kept. Please try again in a moment.")
		if c.Method() == fiber.MethodGet {
			pe.Retry = auth.SafeReturnPath(requestPath(c))
		}
		pe.Back = back
		return pe
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// loginURL is the login link that comes back to path.
func loginURL(path string) string { return "/login?next=" + url.QueryEscape(path) }
