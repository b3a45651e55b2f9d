package order

import "errors"

// Sentinel errors of the domain. Invalid values are a *validation.Error (platform), which
// lists every field at once. The HTTP layer maps each to one status in one table; their
// messages become the detail of the problem+json answer, so they are written for the caller
// and never carry internals.
var (
	// ErrNotFound: no such order, or one the caller may not know exists (404).
	ErrNotFound = errors.New("no such order")
	// ErrProductNotFound: no such product in the catalog, or a retired one (404).
	ErrProductNotFound = errors.New("no such product")
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
