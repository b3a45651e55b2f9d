package payment

import "errors"

// Sentinel errors of the payment domain. Invalid values are a *validation.Error
// (platform), which lists every field at once. Their messages are written to callers as the
// problem detail, so they never carry data the caller may not see.
var (
	// ErrNotFound: no such payment, or not one the caller may know about.
	ErrNotFound = errors.New("no such payment")
	// ErrUnknownOrder: the order service does not know the order, or it is not the caller's.
	// One answer for both, so a shopper cannot probe other shoppers' order ids.
	ErrUnknownOrder = errors.New("unknown order")
	// ErrOrderNotPayable: the order exists but is not pending (paid, cancelled, refunded).
	ErrOrderNotPayable = errors.New("the order is not pending and cannot be paid")
	// ErrOrderPaid: the order already has an approved payment.
	ErrOrderPaid = errors.New("the order has already been paid")
	// ErrPaymentInProgress: another charge of the same order is being processed.
	ErrPaymentInProgress = errors.New("a payment for this order is being processed")
	// ErrRequestInProgress: a request with the same idempotency key has not finished yet.
	ErrRequestInProgress = errors.New("a request with this Idempotency-Key is still being processed; retry later")
	// ErrKeyReused: the idempotency key was first used for a different request.
	ErrKeyReused = errors.New("this Idempotency-Key was used for a different request")
	// ErrNotRefundable: the payment is not approved or partially refunded.
	ErrNotRefundable = errors.New("the payment cannot be refunded in its current status")
	// ErrForbidden: the caller may not perform the action.
	ErrForbidden = errors.New("this action is not allowed")
	// ErrOrderServiceUnavailable: the order service could not be reached or answered badly.
	ErrOrderServiceUnavailable = errors.New("the order service is unavailable")
	// ErrSessionEnded: Keycloak would not exchange the caller's token for the order
	// service (the session has ended), so the order could not be read as the caller.
	ErrSessionEnded = errors.New("your session has ended; log in again to pay")
	// ErrOrderServiceTimeout: the order service did not answer in time.
	ErrOrderServiceTimeout = errors.New("the order service did not answer in time")
	// ErrProcessor: the card processor failed; the outcome is recorded as failed.
	ErrProcessor = errors.New("the card processor failed")
	// ErrNoSuchCharge: the processor made no charge under the reference it was asked about.
	ErrNoSuchCharge = errors.New("the processor has no charge under this reference")
	// ErrNotProcessing is returned by a Store asked to record the outcome of a payment
	// that already has one.
	ErrNotProcessing = errors.New("the payment already has an outcome")
	// ErrDuplicateKey is returned by a Store when an idempotency key is already taken.
	ErrDuplicateKey = errors.New("idempotency key already used")
)
