package order

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"example.com/shop/platform/validation"
)

// Currency is the one currency the shop sells in. One currency keeps an order's total a
// plain sum of its lines: a cart can never mix euros and dollars.
const Currency = "EUR"

// Money is an amount in minor units (cents) of a currency. Never a float: 0.1 + 0.2 is not
// 0.3 in binary floating point, and a shop must add up to the cent.
type Money struct {
	Amount   int64
	Currency string
}

// EUR returns cents euro cents.
func EUR(cents int64) Money { return Money{Amount: cents, Currency: Currency} }

// Bounds of a product an admin may set. They keep every total far from int64 overflow:
// MaxLines * MaxQuantity * MaxUnitPrice is 5e10 cents.
const (
	MaxNameLen        = 100
	MaxDescriptionLen = 2000
	MaxUnitPrice      = 10_000_000 // cents: 100,000.00 EUR
	MaxStock          = 1_000_000
)

// Product is an item of the catalog. Retired products (Active false) are hidden from the
// catalog and cannot be ordered, but old orders keep their name and price.
type Product struct {
	ID          string
	Name        string
	Description string
	Price       Money
	Stock       int
	Active      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ProductInput is everything an admin may set on a product. ID, timestamps and anything
// else are the server's: they are not fields here, so no request can assign them.
type ProductInput struct {
	Name        string
	Description string
	Price       Money
	Stock       int
	// Active is nil when the request leaves it unchanged (true for a new product).
	Active *bool
}

// Normalize trims the texts and checks every bound, returning a *validation.Error that
// lists all problems.
func (in *ProductInput) Normalize() error {
	in.Name = strings.TrimSpace(in.Name)
	in.Description = strings.TrimSpace(in.Description)
	var fe validation.Fields
	switch {
	case in.Name == "":
		fe.Add("name", "is required")
	case !printable(in.Name, false) || utf8.RuneCountInString(in.Name) > MaxNameLen:
		fe.Add("name", "must be at most 100 printable characters on one line")
	}
	if !printable(in.Description, true) || utf8.RuneCountInString(in.Description) > MaxDescriptionLen {
		fe.Add("description", "must be at most 2000 printable characters")
	}
	if in.Price.Amount < 1 || in.Price.Amount > MaxUnitPrice {
		fe.Add("price.amount", "must be between 1 and 10000000 (minor units)")
	}
	if in.Price.Currency != Currency {
		fe.Add("price.currency", "must be "+Currency)
	}
	if in.Stock < 0 || in.Stock > MaxStock {
		fe.Add("stock", "must be between 0 and 1000000")
	}
	return fe.Err()
}

// printable reports whether s is valid UTF-8 without control characters (newlines and tabs
// allowed only when multiline), so names render safely in pages, logs and CSV exports.
func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return false
		}
	}
	return true
}
