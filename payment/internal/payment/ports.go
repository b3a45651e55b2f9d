package payment

import (
	"context"
	"time"
)

// Processor charges cards. The simulated processor implements it; a real payment provider
// would plug in behind the same interface.
type Processor interface {
	// Charge asks for amount on card. A decline is an Authorization with Approved false and
	// a reason, not an error; an error (wrapping ErrProcessor) means the processor failed.
	// Reference is the payment id: a real provider uses it to deduplicate retries.
	// Errors are logged, so they must never carry card data.
	Charge(ctx context.Context, c Charge) (Authorization, error)
	// Lookup returns the outcome of the charge made under reference, for a payment whose
	// outcome was never recorded (the service stopped, or lost the answer, between Charge
	// and recording it). It returns ErrNoSuchCharge when no charge was made under
	// reference; any other error means the processor cannot tell now.
	Lookup(ctx context.Context, reference string) (Authorization, error)
}

// Charge is what a Processor is asked to do.
type Charge struct {
	Reference string
	Amount    Money
	Card      Card
}

// Authorization is a processor's answer to a charge.
type Authorization struct {
	Approved bool
	Reason   Reason
}

// Orders reads orders from the order service.
type Orders interface {
	// Order reads order id as actor sees it (the actor's token is propagated). It returns
	// ErrUnknownOrder when the order service does not know the order or will not show it to
	// the actor, ErrOrderServiceTimeout or ErrOrderServiceUnavailable when it cannot tell.
	Order(ctx context.Context, as Actor, id string) (Order, error)
}

// Notifier hears of a notice committed to the outbox, so it can be delivered at once rather
// than at the next poll. The notice itself is in the database: delivery needs nothing from
// the request that wrote it (the payment service calls the order service with its own
// credentials), so a notice outlives a restart.
type Notifier interface {
	Notify()
}

// Idempotency is an idempotency key as stored with the record it created: scoped by the
// caller's subject, and with a fingerprint of the request to tell a retry from a reuse.
type Idempotency struct {
	Subject     string
	Key         string
	Fingerprint string
}

// RefundPlan is what a refund writes, all in one transaction: the refund, the payment's new
// refunded total, its audit entry and its outbox notice.
type RefundPlan struct {
	Refund Refund
	Audit  AuditEntry
	Notice Notice
}

// Store keeps payments, refunds, the audit log and the outbox. Implementations must make
// Reserve and Refund atomic and safe under concurrency: that is where "at most one approved
// payment per order" and "never refund more than was charged" are enforced.
type Store interface {
	// Reserve records p (status processing) with its idempotency key. It returns
	// ErrDuplicateKey if the key is taken, ErrOrderPaid or ErrPaymentInProgress if the order's
	// payment slot is held by another payment.
	Reserve(ctx context.Context, p Payment, key Idempotency) error
	// Finish moves a processing payment to its outcome (approved, declined or failed). A
	// non-nil notice is committed to the outbox in the same transaction: the paid notice of
	// an approval exists exactly when the approval does. It returns ErrNotProcessing if the
	// payment has an outcome already, so only one outcome is ever recorded.
	Finish(ctx context.Context, id string, outcome Status, reason Reason, at time.Time, notice *Notice) (Payment, error)
	// Stuck lists up to limit payments still processing that were last updated before
	// before, oldest first.
	Stuck(ctx context.Context, before time.Time, limit int) ([]Payment, error)
	// PaymentByKey returns the payment created under the key, and the request fingerprint.
	PaymentByKey(ctx context.Context, subject, key string) (Payment, string, error)
	// Payment returns one payment, or ErrNotFound.
	Payment(ctx context.Context, id string) (Payment, error)
	// PaymentsOf lists the payments owned by owner, newest first. The owner is part of the
	// query itself; an empty owner is an error, never "everyone".
	PaymentsOf(ctx context.Context, owner string, page Page) ([]Payment, error)
	// Payments lists all payments matching f, newest first.
	Payments(ctx context.Context, f Filter) ([]Payment, error)
	// Refund runs plan on the current state of payment paymentID inside a transaction and
	// writes what it returns, with the refund under key. It must re-check, in the write
	// itself, that the refund still fits, so that concurrent refunds never exceed the amount
	// charged. It returns ErrDuplicateKey if the key is taken.
	Refund(ctx context.Context, paymentID string, key Idempotency, plan func(Payment) (RefundPlan, error)) (Refund, error)
	// RefundByKey returns the refund created under the key, and the request fingerprint.
	RefundByKey(ctx context.Context, subject, key string) (Refund, string, error)
	// Audit lists the audit log entries matching f, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}
