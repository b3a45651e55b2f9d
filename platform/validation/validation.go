// Package validation is the one shape of "these fields of the request are not acceptable"
// in the shop. The services' domain packages return it without knowing about HTTP, and
// platform/problem answers it 422 with every field listed, so a client can fix them all
// in one go.
package validation

import (
	"errors"
	"strings"
)

// ErrInvalid is what every *Error matches with errors.Is.
var ErrInvalid = errors.New("the request has invalid values")

// FieldError names one invalid field by its path in the request (e.g. items[2].quantity)
// and says what is wrong with it. Messages are written for the caller: they never carry
// internals.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error lists the invalid fields of one request.
type Error struct {
	Fields []FieldError
}

// New returns an *Error for fields.
func New(fields ...FieldError) *Error { return &Error{Fields: fields} }

// Error joins the field problems into one line.
func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Fields collects the problems of a request as a check finds them.
type Fields []FieldError

// Add records that field is invalid.
func (f *Fields) Add(field, message string) {
	*f = append(*f, FieldError{Field: field, Message: message})
}

// Err is an *Error listing the fields, or nil when there are none.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Fields: f}
}
