package order

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"example.com/shop/platform/validation"
)

// Status is where an order is in its lifecycle.
type Status string

// The statuses of an order.
const (
	StatusPending   Status = "pending"
	StatusPaid      Status = "paid"
	StatusCancelled Status = "cancelled"
	StatusRefunded  Status = "refunded"
)

// transitions is the whole lifecycle: every move not listed is refused. Cancelled and
// refunded are final.
var transitions = map[Status][]Status{
	StatusPending: {StatusPaid, StatusCancelled},
	StatusPaid:    {StatusRefunded},
}

// CanBecome reports whether an order in status s may move to status to.
func (s Status) CanBecome(to Status) bool { return slices.Contains(transitions[s], to) }

// ParseStatus returns the status named s, if there is one.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusPending, StatusPaid, StatusCancelled, StatusRefunded:
		return st, true
	}
	return "", false
}

// TransitionError is the refusal of a move the lifecycle does not allow.
func TransitionError(from, to Status) error {
	return fmt.Errorf("%w: the order is %s and cannot become %s", ErrInvalidTransition, from, to)
}

// Bounds of an order's request that no configuration may exceed (Rules sets the shop's
// own, lower ones).
const (
	MaxLines    = 50
	MinQuantity = 1
	MaxQuantity = 100
)

// ValidID reports whether s is an id in the canonical form the services issue (a lowercase
// UUID). Anything else names nothing, so callers answer 404 or 422 without asking the
// database.
func ValidID(s string) bool {
	if len(s) != 36 || strings.ToLower(s) != s {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// Line is one line of an order request: a product and how many. It is all a shopper
// chooses; everything else about an order is decided by the server.
type Line struct {
	ProductID string
	Quantity  int
}

// ValidateLines checks an order request's lines against the shop's rules: 1 to
// r.MaxLines lines, each quantity within MinQuantity..r.MaxQuantity, each product named
// once. A product listed twice is refused rather than merged, so the bound on quantity
// means what it says and the client's cart is never silently rewritten.
func ValidateLines(lines []Line, r Rules) error {
	var fe validation.Fields
	switch {
	case len(lines) == 0:
		fe.Add("items", "must list at least one product")
	case len(lines) > r.MaxLines:
		fe.Add("items", "must list at most "+strconv.Itoa(r.MaxLines)+" products")
		return fe.Err() // one message instead of hundreds
	}
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		at := "items[" + strconv.Itoa(i) + "]"
		switch {
		case l.ProductID == "":
			fe.Add(at+".productId", "is required")
		case !ValidID(l.ProductID):
			fe.Add(at+".productId", "no such product")
		default:
			if first, dup := seen[l.ProductID]; dup {
				fe.Add(at+".productId", "is already listed in items["+strconv.Itoa(first)+"]; send one line per product")
			} else {
				seen[l.ProductID] = i
			}
		}
		if l.Quantity < MinQuantity || l.Quantity > r.MaxQuantity {
			fe.Add(at+".quantity", "must be between "+strconv.Itoa(MinQuantity)+" and "+strconv.Itoa(r.MaxQuantity))
		}
	}
	return fe.Err()
}

// Fingerprint identifies what a create request asks for, independent of line order, so a
// retry under the same Idempotency-Key can be told apart from a different request.
func Fingerprint(lines []Line) string {
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int { return strings.Compare(a.ProductID, b.ProductID) })
	h := sha256.New()
	for _, l := range sorted {
		fmt.Fprintf(h, "%s:%d\n", l.ProductID, l.Quantity)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Item is a line of an order as it was sold: the product's name and price are copied at
// order time, so later catalog changes never rewrite an order.
type Item struct {
	ProductID string
	Name      string
	UnitPrice Money
	Quantity  int
	LineTotal Money
}

// Price turns validated lines into items priced from the catalog, and their total. A
// product missing from catalog or retired cannot be ordered (*validation.Error naming the
// line).
func Price(lines []Line, catalog map[string]Product) ([]Item, Money, error) {
	var fe validation.Fields
	items := make([]Item, 0, len(lines))
	total := EUR(0)
	for i, l := range lines {
		p, ok := catalog[l.ProductID]
		if !ok || !p.Active {
			fe.Add("items["+strconv.Itoa(i)+"].productId", "no such product")
			continue
		}
		if p.Price.Currency != Currency {
			return nil, Money{}, fmt.Errorf("product %s is priced in %q, the shop sells in %s", p.ID, p.Price.Currency, Currency)
		}
		line := EUR(p.Price.Amount * int64(l.Quantity))
		items = append(items, Item{ProductID: p.ID, Name: p.Name, UnitPrice: p.Price, Quantity: l.Quantity, LineTotal: line})
		total.Amount += line.Amount
	}
	if err := fe.Err(); err != nil {
		return nil, Money{}, err
	}
	return items, total, nil
}

// Order is a shopper's order.
type Order struct {
	ID string
	// Number is the order's number in this shop, unique and increasing (with gaps), which
	// people read out and search by; the ID is for machines.
	Number int64
	// UserID is the owner: the `sub` of the token that created the order, never a value
	// from a request body.
	UserID string
	// Customer is the owner's username at order time, for people reading lists.
	Customer string
	Status   Status
	Items    []Item
	Total    Money
	// Refunded is how much of Total the payment service has refunded so far.
	Refunded  Money
	PaymentID string
	// PaymentAttempts counts the charge attempts that ended for good without a charge
	// (declined, failed, refused as invalid). It names the Idempotency-Key of the next
	// charge (see PaymentKey).
	PaymentAttempts int
	// PaymentStartedAt is when the current charge attempt was last sent to the payment
	// service; zero when no attempt is in flight. An order pending with an attempt in flight
	// long after that is one whose checkout lost the answer: reconciliation settles it.
	PaymentStartedAt time.Time
	// PaymentDueAt is when a pending order without an attempt in flight expires (Rules'
	// PaymentHold after it was placed); zero for orders placed before holds existed.
	PaymentDueAt time.Time
	// CancelReason says why a cancelled order was cancelled; empty otherwise.
	CancelReason CancelReason
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// PaymentKey is the Idempotency-Key of the order's current charge attempt. It changes only
// after the payment service definitively declined or failed the attempt: a retry after a
// timeout or an unexplained 5xx sends the same key, so the payment service replays the
// charge it may already have made instead of charging twice.
func (o *Order) PaymentKey() string {
	return "order:" + o.ID + ":attempt:" + strconv.Itoa(o.PaymentAttempts)
}

// CheckPayable refuses to charge an order that is not pending; an expired one is
// ErrExpired, so its shopper learns what happened and what to do.
func (o *Order) CheckPayable() error {
	if o.Expired() {
		return ErrExpired
	}
	if !o.Status.CanBecome(StatusPaid) {
		return TransitionError(o.Status, StatusPaid)
	}
	return nil
}

// CheckPaidAmount refuses to record a payment of another amount than the order's total as
// paying it: the payment service charges the total it reads from this service, so any
// other amount means the two disagree about the order, which a person must look into.
func (o *Order) CheckPaidAmount(m Money) error {
	if m != o.Total {
		return validation.New(validation.FieldError{Field: "amount",
			Message: "must be the order's total, " + strconv.FormatInt(o.Total.Amount, 10) + " " + o.Total.Currency})
	}
	return nil
}

// CheckDeletable decides who may delete the order: an admin any order; its owner only one
// that is pending or cancelled, since a paid order is a record the shop must keep.
func (o *Order) CheckDeletable(byAdmin bool) error {
	if byAdmin || o.Status == StatusPending || o.Status == StatusCancelled {
		return nil
	}
	return fmt.Errorf("%w: a %s order can only be deleted by an admin", ErrInvalidTransition, o.Status)
}

// ApplyRefund records a refund report from the payment service. refundedTotal is the total
// refunded so far on paymentID, not the amount of one refund: a repeated or late report
// then changes nothing (the report is idempotent per payment and amount), and reports
// arriving out of order cannot add up to more than was refunded. fully must agree with
// refundedTotal reaching the order's total; the order becomes refunded when it does.
// changed reports whether the order was modified.
func (o *Order) ApplyRefund(paymentID string, refundedTotal int64, fully bool) (changed bool, err error) {
	var fe validation.Fields
	if paymentID == "" {
		fe.Add("paymentId", "is required")
	}
	if refundedTotal < 1 || refundedTotal > o.Total.Amount {
		fe.Add("amount", "must be between 1 and the order's total, "+strconv.FormatInt(o.Total.Amount, 10))
	} else if fully != (refundedTotal == o.Total.Amount) {
		fe.Add("fullyRefunded", "must be true exactly when amount equals the order's total")
	}
	if err := fe.Err(); err != nil {
		return false, err
	}
	if o.Status != StatusPaid && o.Status != StatusRefunded {
		return false, TransitionError(o.Status, StatusRefunded)
	}
	if paymentID != o.PaymentID {
		return false, ErrPaymentMismatch
	}
	if refundedTotal <= o.Refunded.Amount {
		return false, nil // already known: a retry or a report overtaken by a later one
	}
	o.Refunded = EUR(refundedTotal)
	if fully {
		o.Status = StatusRefunded
	}
	return true, nil
}
