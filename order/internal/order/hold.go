package order

import (
	"errors"
	"strconv"
	"time"
)

// Placing an order takes its stock off the shelf at once, so that two shoppers can never
// buy the same last item. Left unbounded that is a way to empty the shop without paying
// (OWASP API6:2023, unrestricted access to a sensitive business flow). Rules bound it:
// what one order may take, how long it may hold the stock unpaid, and how many unpaid
// orders one shopper may hold at a time.
type Rules struct {
	// MaxLines is how many products one order may list (1..MaxLines).
	MaxLines int
	// MaxQuantity is how many units of one product one order may take (1..MaxQuantity).
	MaxQuantity int
	// PaymentHold is how long an order keeps its stock unpaid. After that it expires:
	// it is cancelled and its stock goes back on the shelf.
	PaymentHold time.Duration
	// MaxUnpaid is how many unpaid (pending) orders one shopper may hold at a time.
	MaxUnpaid int
}

// DefaultRules fit a small shop: a basket, not a pallet.
var DefaultRules = Rules{MaxLines: 20, MaxQuantity: 10, PaymentHold: 15 * time.Minute, MaxUnpaid: 3}

// Bounds of Rules a configuration may set, beside MaxLines and MaxQuantity.
const (
	MinPaymentHold = 10 * time.Second
	MaxPaymentHold = 24 * time.Hour
	MaxMaxUnpaid   = 100
)

// CancelReason says why an order was cancelled, so its shopper can tell an order they
// cancelled from one that ran out of time.
type CancelReason string

// The reasons an order is cancelled.
const (
	// CancelRequested: its shopper or an admin cancelled (or deleted) it.
	CancelRequested CancelReason = "requested"
	// CancelExpired: it was not paid within its payment hold.
	CancelExpired CancelReason = "expired"
)

// ErrExpired: the order was not paid within its hold (409). The message is the shopper's
// next step.
var ErrExpired = errors.New("the order expired before it was paid, and its items went back on the shelf; place a new order")

// ErrTooManyUnpaid: the shopper already holds as many unpaid orders as the shop allows
// (409). UnpaidLimitError is the error that says how many; it matches ErrTooManyUnpaid.
var ErrTooManyUnpaid = errors.New("too many unpaid orders")

// UnpaidLimitError is the refusal of an order beyond the shopper's max unpaid orders,
// worded for the shopper.
func UnpaidLimitError(max int) error { return unpaidLimitError(max) }

type unpaidLimitError int

func (e unpaidLimitError) Error() string {
	orders := "orders"
	if e == 1 {
		orders = "order"
	}
	return "you already have " + strconv.Itoa(int(e)) + " unpaid " + orders +
		", the most the shop holds for one shopper; pay or cancel one of them, then place this order again"
}

func (unpaidLimitError) Is(target error) bool { return target == ErrTooManyUnpaid }

// Expired reports whether the order was cancelled because it was not paid in time.
func (o *Order) Expired() bool {
	return o.Status == StatusCancelled && o.CancelReason == CancelExpired
}

// Overdue reports whether the order is pending past its payment deadline with no charge
// attempt in flight: it is about to expire, and may no longer start a payment. An attempt
// in flight keeps the order until it ends, so a charge that may have gone through is
// never cut off by the clock.
func (o *Order) Overdue(now time.Time) bool {
	return o.Status == StatusPending && o.PaymentStartedAt.IsZero() &&
		!o.PaymentDueAt.IsZero() && !now.Before(o.PaymentDueAt)
}
