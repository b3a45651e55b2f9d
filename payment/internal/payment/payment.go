// Package payment is the payment service's domain: payments and refunds, the rules that
// govern them (who owns a payment, what may be charged and refunded, which cards are
// accepted), the sentinel errors the HTTP layer maps to statuses, and the ports the Service
// talks through (Processor, Orders, Store, Notifier). It knows nothing of HTTP or SQL, so the
// rules read in one place and are tested without either.
package payment

import (
	"log/slog"
	"time"
)

// RoleUser is the realm role every shopper holds, which the public routes require. (The
// internal routes require svcauth.RoleService.)
const RoleUser = "USER"

// Money is an amount in integer minor units (cents) and its ISO 4217 currency. Money is never
// a float: sums and comparisons must be exact.
type Money struct {
	Amount   int64
	Currency string
}

// Status is where a payment stands.
type Status string

// The statuses of a payment. Processing holds the order's payment slot while the processor is
// asked; approved, partially_refunded and refunded keep holding it, so an order is never
// charged twice; declined and failed release it, so the shopper can try another card.
const (
	StatusProcessing        Status = "processing"
	StatusApproved          Status = "approved"
	StatusDeclined          Status = "declined"
	StatusFailed            Status = "failed"
	StatusPartiallyRefunded Status = "partially_refunded"
	StatusRefunded          Status = "refunded"
)

// Statuses lists every status, for filters and validation.
var Statuses = []Status{StatusProcessing, StatusApproved, StatusDeclined, StatusFailed, StatusPartiallyRefunded, StatusRefunded}

// HoldingStatuses are the statuses that occupy an order's single payment slot. The store
// enforces that at most one payment per order is in one of them.
var HoldingStatuses = []Status{StatusProcessing, StatusApproved, StatusPartiallyRefunded, StatusRefunded}

// RefundableStatuses are the statuses a refund may start from.
var RefundableStatuses = []Status{StatusApproved, StatusPartiallyRefunded}

// Refundable reports whether money can still be given back on a payment in status s.
func (s Status) Refundable() bool { return s == StatusApproved || s == StatusPartiallyRefunded }

// Reason says why a charge did not succeed.
type Reason string

// Reasons a charge is declined or failed; they are part of the API (the 402 and 502 answers).
const (
	ReasonCardDeclined      Reason = "card_declined"
	ReasonInsufficientFunds Reason = "insufficient_funds"
	ReasonProcessorError    Reason = "processor_error"
)

// Payment is one charge of an order's total to a card, and what has been refunded of it.
// Only the card's brand and last four digits are kept: the number, expiry and CVC are used
// for the charge and forgotten.
type Payment struct {
	ID      string
	OrderID string
	// UserID owns the payment: the order's owner, whoever asked for the charge.
	UserID string
	Amount Money
	// Refunded is the sum of the refunds so far, in Amount's currency; never more than Amount.
	Refunded int64
	Status   Status
	// Outcome is what the charge answered (approved, declined or failed). Unlike Status it
	// never changes afterwards, which is what lets an idempotent retry replay the first answer.
	Outcome   Status
	Reason    Reason
	CardBrand Brand
	CardLast4 string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Remaining is what may still be refunded.
func (p Payment) Remaining() int64 { return p.Amount.Amount - p.Refunded }

// AsCharged is the payment as the charge first answered it: before any refund. A retried
// charge replays this view, so the retry gets the same answer as the first attempt even
// after refunds moved the payment on.
func (p Payment) AsCharged() Payment {
	p.Status, p.Refunded, p.UpdatedAt = p.Outcome, 0, p.CreatedAt
	return p
}

// Refund gives back part or all of an approved payment.
type Refund struct {
	ID        string
	PaymentID string
	OrderID   string
	Amount    Money
	// FullyRefunded tells whether this refund brought the payment to refunded.
	FullyRefunded bool
	// By is the admin who asked for the refund.
	By        Actor
	CreatedAt time.Time
}

// AuditEntry records an admin action: who, what, on which resource, when, under which
// request id.
type AuditEntry struct {
	ID           string
	At           time.Time
	ActorSubject string
	ActorName    string
	Action       string
	Resource     string
	// Detail is a short JSON object with the action's parameters; never card data.
	Detail    string
	RequestID string
}

// AuditRefund is the audit action of a refund.
const AuditRefund = "payment.refund"

// NoticeKind says what a Notice reports to the order service.
type NoticeKind string

// The kinds of notices.
const (
	// NoticePaid reports an approved charge, so that an order whose checkout never heard
	// the answer (a crash or timeout between charge and order update) becomes paid anyway.
	NoticePaid NoticeKind = "paid"
	// NoticeRefunded reports a refund.
	NoticeRefunded NoticeKind = "refunded"
)

// Notice tells the order service about an approved charge or a refund. It is written to the
// outbox in the same transaction as what it reports, and delivered until acknowledged.
type Notice struct {
	ID        string
	Kind      NoticeKind
	OrderID   string
	PaymentID string
	// RefundID names the refund a refunded notice reports; empty for a paid notice.
	RefundID string
	// Amount is what was charged (paid) or this refund's amount (refunded).
	Amount Money
	// RefundedTotal is the payment's refunded total once this refund is applied. The order
	// service is told the total, not the increment: the outbox delivers at least once and
	// not necessarily in order, and a total makes a repeated or overtaken notice harmless.
	RefundedTotal int64
	FullyRefunded bool
	RequestID     string
	CreatedAt     time.Time
	Attempts      int
}

// Credential is a caller's bearer access token. Its String and LogValue never show the
// token, so it cannot reach a log by accident.
type Credential struct {
	Token string
}

// String hides the token.
func (c Credential) String() string { return "Credential{redacted}" }

// GoString hides the token from %#v.
func (c Credential) GoString() string { return c.String() }

// LogValue hides the token from slog.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON hides the token from JSON, which is how slog's JSON handler prints a struct
// that holds a Credential (an Actor, say): LogValue only applies to top-level values.
func (c Credential) MarshalJSON() ([]byte, error) { return []byte(`"redacted"`), nil }

// Actor is the authenticated caller of a service method.
type Actor struct {
	// Subject is the token's `sub`; ownership and idempotency keys are scoped by it.
	Subject string
	// Username is for the audit log and display only.
	Username string
	Admin    bool
	// Credential is the caller's access token, propagated to the order service (JWT
	// propagation). It is never stored.
	Credential Credential
	RequestID  string
}

// Order is what the payment service needs to know of an order: whose it is, whether it may
// be paid, and what it costs. The total always comes from the order service, never from the
// payment request.
type Order struct {
	ID     string
	UserID string
	Status string
	Total  Money
}

// OrderPending is the only order status that may be charged.
const OrderPending = "pending"

// Page bounds a list.
type Page struct {
	Limit  int
	Offset int
}

// Filter selects payments in the admin's list; zero fields select everything.
type Filter struct {
	OrderID string
	Status  Status
	Page    Page
}

// AuditFilter narrows the audit log; zero fields do not filter.
type AuditFilter struct {
	// Action is one of AuditActions.
	Action string
	// Actor is who acted (a username), matched exactly.
	Actor string
	Page  Page
}

// AuditActions lists every action the audit log records, for the filters that name one.
var AuditActions = []string{AuditRefund}
