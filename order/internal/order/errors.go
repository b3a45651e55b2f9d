package order

import (
	"errors"
	"strings"
)

// Sentinel errors of the domain. The HTTP layer maps each to one status in one table; their
// messages become the detail of the problem+json answer, so they are written for the caller
// and never carry internals.
var (
	// ErrNotFound: no such order, or one the caller may not know exists (404).
	ErrNotFound = errors.New("no such order")
	// ErrProductNotFound: no such product in the catalog, or a retired one (404).
	ErrProductNotFound = errors.New("no such product")
	// ErrInvalid: the request is well-formed but its values are not acceptable (422). A
	// *ValidationError says which fields.
	ErrInvalid = errors.New("the request has invalid values")
	// ErrOutOfStock: the catalog cannot cover a line of the order (409).
	ErrOutOfStock = errors.New("not enough stock")
	// ErrInvalidTransition: the order's status does not allow the action (409).
	ErrInvalidTransition = errors.New("the order's status does not allow this")
	// ErrConcurrentUpdate: the order changed between reading and writing it (409); the
	// caller may read it again and retry.
	ErrConcurrentUpdate = errors.New("the order changed meanwhile; read it again and retry")
	// ErrIdempotencyMismatch: an Idempotency-Key was reused with another request (422).
	ErrIdempotencyMismatch = errors.New("this Idempotency-Key was already used with a different request")
	// ErrIdempotencyGone: an Idempotency-Key names an order that has since been deleted
	// (409); replaying it would resurrect nothing and creating another would break the
	// promise that a key creates at most one order.
	ErrIdempotencyGone = errors.New("this Idempotency-Key created an order that has since been deleted")
	// ErrPaymentMismatch: a refund report names a payment that did not pay this order (409).
	ErrPaymentMismatch = errors.New("the refund names a payment that did not pay this order")
	// ErrDeleted: a report from the payment service names an order that has been deleted
	// (409): final, unlike an unknown order, so its sender stops retrying.
	ErrDeleted = errors.New("the order has been deleted")
)

// FieldError names one invalid field of a request, by its path in the request body
// (e.g. items[2].quantity).
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every invalid field of a request at once, so a client can fix them
// all in one go. It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Fields []FieldError
}

// Error joins the field problems into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// fieldErrors collects FieldErrors; err returns nil when there are none.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, message string) {
	*fe = append(*fe, FieldError{Field: field, Message: message})
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &ValidationError{Fields: fe}
}
