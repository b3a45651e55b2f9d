// Package problem writes every error of the shop's HTTP APIs as RFC 9457
// application/problem+json, from one Fiber ErrorHandler.
//
// Handlers return errors; they never write error bodies themselves. Domain packages export
// sentinel errors (order.ErrNotFound) and each service maps them to statuses in one table
// given to Handler. Anything unmapped is a bug: it is logged with the request id and
// answered as a generic 500 that carries no stack trace, SQL or token.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"example.com/shop/platform/validation"
)

// ContentType is the media type of every error body (RFC 9457).
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem detail. It is also an error, so handlers can return it.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RequestID ties the answer to the server's logs.
	RequestID string `json:"requestId,omitempty"`
	// TraceID is the request's OpenTelemetry trace id when it is traced: the one id that
	// finds the request in every service's logs and in the trace store.
	TraceID string `json:"traceId,omitempty"`
	// Errors lists field-level problems of a request body, so a client can fix all at once.
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter, in seconds, is set on 429 and 503 answers.
	RetryAfter int `json:"retryAfter,omitempty"`

	// Extensions are extra members of the problem object (RFC 9457 section 3.2), such as
	// a declined payment's paymentId and reason.
	Extensions map[string]any `json:"-"`

	// Headers are written with the response, e.g. WWW-Authenticate on a 401.
	Headers map[string]string `json:"-"`
}

// MarshalJSON writes the standard members and the extensions side by side; an extension
// never replaces a standard member.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	std, err := json.Marshal(plain(p))
	if err != nil || len(p.Extensions) == 0 {
		return std, err
	}
	var merged map[string]any
	if err := json.Unmarshal(std, &merged); err != nil {
		return nil, err
	}
	for k, v := range p.Extensions {
		if _, taken := merged[k]; !taken {
			merged[k] = v
		}
	}
	return json.Marshal(merged)
}

// With returns p with an extension member set.
func (p *Problem) With(name string, value any) *Problem {
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions[name] = value
	return p
}

// FieldError names one invalid field of a request; it is validation's, so a domain's
// field list becomes a problem's without copying.
type FieldError = validation.FieldError

// Error makes a Problem usable as an error value.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// New returns a problem with the standard title of status.
func New(status int, detail string) *Problem {
	return &Problem{Title: http.StatusText(status), Status: status, Detail: detail}
}

// WithHeader returns p with an extra response header.
func (p *Problem) WithHeader(name, value string) *Problem {
	if p.Headers == nil {
		p.Headers = map[string]string{}
	}
	p.Headers[name] = value
	return p
}

// BadRequest is a 400: the request cannot be read (malformed JSON, wrong types).
func BadRequest(detail string) *Problem { return New(http.StatusBadRequest, detail) }

// Invalid is a 422: the request is well-formed but its values are not acceptable.
func Invalid(detail string, fields ...FieldError) *Problem {
	p := New(http.StatusUnprocessableEntity, detail)
	p.Errors = fields
	return p
}

// NotFound is a 404. It is also the answer for a resource the caller may not know exists.
func NotFound(detail string) *Problem { return New(http.StatusNotFound, detail) }

// Forbidden is a 403: the caller is known but not allowed.
func Forbidden(detail string) *Problem { return New(http.StatusForbidden, detail) }

// Conflict is a 409: the request clashes with the resource's current state.
func Conflict(detail string) *Problem { return New(http.StatusConflict, detail) }

// Mapping ties a domain error (matched with errors.Is) to an HTTP status.
type Mapping struct {
	Err    error
	Status int
}

// Map is the one table of a service from domain errors to statuses.
type Map []Mapping

// lookup returns the status of the first mapping err matches.
func (m Map) lookup(err error) (int, bool) {
	for _, e := range m {
		if errors.Is(err, e.Err) {
			return e.Status, true
		}
	}
	return 0, false
}
