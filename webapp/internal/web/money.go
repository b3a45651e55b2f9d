package web

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"example.com/shop/webapp/internal/gateway"
)

// minorDigits lists the ISO 4217 currencies whose minor unit is not the cent.
var minorDigits = map[string]int{
	"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
	"CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "VND": 0,
}

func digits(currency string) int {
	if d, ok := minorDigits[currency]; ok {
		return d
	}
	return 2
}

var symbols = map[string]string{"EUR": "€", "USD": "$", "GBP": "£"}

// formatAmount renders minor units as a decimal amount, e.g. 1999 EUR as 19.99.
func formatAmount(m gateway.Money) string {
	d := digits(m.Currency)
	a := m.Amount
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	if d == 0 {
		return sign + strconv.FormatInt(a, 10)
	}
	div := int64(1)
	for range d {
		div *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, a/div, d, a%div)
}

// formatMoney renders money for people, e.g. €19.99 or 1500 JPY.
func formatMoney(m gateway.Money) string {
	if s, ok := symbols[m.Currency]; ok {
		return s + formatAmount(m)
	}
	return formatAmount(m) + " " + m.Currency
}

var errAmount = errors.New("enter an amount like 12.50")

// parseAmount reads a decimal amount typed by a person ("12", "12.5", "12,50") as minor
// units of currency, exactly: no floating point is involved.
func parseAmount(s, currency string) (int64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, ",", "."))
	whole, frac, hasFrac := strings.Cut(s, ".")
	d := digits(currency)
	if whole == "" || len(whole) > 12 || len(frac) > d || (hasFrac && frac == "") {
		return 0, errAmount
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, errAmount
		}
	}
	frac += strings.Repeat("0", d-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, errAmount
	}
	return n, nil
}
