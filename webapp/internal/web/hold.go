package web

import (
	"strconv"
	"time"

	"example.com/shop/webapp/internal/gateway"
)

// holdView tells the shopper how long an unpaid order keeps its items (the order
// service's payment hold), in words.
type holdView struct {
	// PayWithin is the time left to pay, e.g. "14 minutes"; empty when the order has no
	// deadline or it has passed.
	PayWithin string
	// TimeUp: the deadline has passed and the order is about to expire.
	TimeUp bool
}

func holdOf(o *gateway.Order, now time.Time) holdView {
	if o == nil || o.Status != gateway.StatusPending || o.PaymentDueAt == nil {
		return holdView{}
	}
	left := o.PaymentDueAt.Sub(now)
	if left <= 0 {
		return holdView{TimeUp: true}
	}
	return holdView{PayWithin: inWords(left)}
}

// inWords says a duration the way a person would, rounded down to the minute (so the
// shopper never has less time than the page says): "less than a minute", "1 minute",
// "14 minutes", "2 hours", "1 hour 5 minutes".
func inWords(d time.Duration) string {
	minutes := int(d / time.Minute)
	if minutes < 1 {
		return "less than a minute"
	}
	hours, minutes := minutes/60, minutes%60
	var s string
	if hours > 0 {
		s = plural(hours, "hour")
	}
	if minutes > 0 {
		if s != "" {
			s += " "
		}
		s += plural(minutes, "minute")
	}
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// Reasons the order service gives for the 409s the shop answers in its own words.
const (
	reasonTooManyUnpaid = "too_many_unpaid_orders"
	reasonOrderExpired  = "order_expired"
)

// tooManyUnpaid is what the checkout page says when the shopper holds as many unpaid orders
// as the shop allows.
const tooManyUnpaid = "You already have as many unpaid orders as the shop holds for one shopper. " +
	"Pay for one of them or cancel it in My orders, then place this order again. Your cart is kept."
