package payment

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"example.com/shop/platform/validation"
)

// Brand is a card network.
type Brand string

// The card brands the shop accepts.
const (
	BrandVisa       Brand = "visa"
	BrandMastercard Brand = "mastercard"
	BrandAmex       Brand = "amex"
)

// Card is the card a charge is made to. Its String, GoString, LogValue and MarshalJSON show
// only brand and last four digits: the full number and the CVC must never reach a log, an
// error message or a response, whoever prints the value.
//
// The JSON names are the wire names of the charge request. The request is decoded straight
// into Card so that the raw number never sits in a type without that redaction.
type Card struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"expMonth"`
	ExpYear  int    `json:"expYear"`
	CVC      string `json:"cvc"`
	Holder   string `json:"holder"`
}

// Digits is the card number without the spaces and dashes people type.
func (c Card) Digits() string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, c.Number)
}

// Last4 is the last four digits of the number, or "" for a number too short to have them.
func (c Card) Last4() string {
	d := c.Digits()
	if len(d) < 4 {
		return ""
	}
	return d[len(d)-4:]
}

// Brand detects the card network from the number's leading digits (its IIN range), or ""
// for a network the shop does not accept.
func (c Card) Brand() Brand {
	d := c.Digits()
	switch {
	case len(d) == 16 && strings.HasPrefix(d, "4"), len(d) == 19 && strings.HasPrefix(d, "4"):
		return BrandVisa
	case len(d) == 15 && (strings.HasPrefix(d, "34") || strings.HasPrefix(d, "37")):
		return BrandAmex
	case len(d) == 16 && inRange(d[:2], "51", "55"), len(d) == 16 && inRange(d[:4], "2221", "2720"):
		return BrandMastercard
	}
	return ""
}

// inRange compares equal-length digit strings, which order like the numbers they spell.
func inRange(s, lo, hi string) bool { return s >= lo && s <= hi }

// String shows only what may be stored.
func (c Card) String() string { return fmt.Sprintf("Card{%s ****%s}", c.Brand(), c.Last4()) }

// GoString keeps %#v from printing the fields.
func (c Card) GoString() string { return c.String() }

// LogValue keeps slog from printing the fields.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("brand", string(c.Brand())), slog.String("last4", c.Last4()))
}

// MarshalJSON keeps a card that ends up in a JSON document (a debug dump, an error body)
// down to what may be stored.
func (c Card) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"brand":%q,"last4":%q}`, c.Brand(), c.Last4()), nil
}

// Validate checks the card as a processor would before charging it: a number of a supported
// brand that passes the Luhn check, an expiry that has not passed at now, and a CVC of the
// brand's length. It returns every problem at once.
func (c Card) Validate(now time.Time) validation.Fields {
	var errs validation.Fields
	d := c.Digits()
	switch {
	case d == "":
		errs.Add("card.number", "is required")
	case !allDigits(d) || len(d) < 12 || len(d) > 19:
		errs.Add("card.number", "must be 12 to 19 digits")
	case !luhn(d):
		errs.Add("card.number", "is not a valid card number")
	case c.Brand() == "":
		errs.Add("card.number", "brand not accepted (Visa, Mastercard or American Express)")
	}
	switch {
	case c.ExpMonth < 1 || c.ExpMonth > 12:
		errs.Add("card.expMonth", "must be 1 to 12")
	case c.ExpYear < 2000 || c.ExpYear > 2099:
		errs.Add("card.expYear", "must be a four-digit year")
	case expired(c.ExpYear, c.ExpMonth, now):
		errs.Add("card.expYear", "the card has expired")
	}
	cvcLen := 3
	if c.Brand() == BrandAmex {
		cvcLen = 4
	}
	if len(c.CVC) != cvcLen || !allDigits(c.CVC) {
		errs.Add("card.cvc", fmt.Sprintf("must be %d digits", cvcLen))
	}
	if len(c.Holder) > 100 {
		errs.Add("card.holder", "must be at most 100 characters")
	}
	return errs
}

// expired reports whether a card expiring in month/year is no longer valid at now: cards
// are good through the last day of their expiry month.
func expired(year, month int, now time.Time) bool {
	firstOfNextMonth := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.UTC().Before(firstOfNextMonth)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// luhn is the mod-10 checksum every card number carries; it catches mistyped digits before
// anything is sent to the processor.
func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		n := int(digits[i] - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}
