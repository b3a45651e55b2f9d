package payment_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"example.com/shop/payment/internal/payment"
)

var now = time.Date(2025, 11, 28, 12, 0, 0, 0, time.UTC)

func TestCardBrandAndLast4(t *testing.T) {
	cases := []struct {
		number string
		brand  payment.Brand
		last4  string
	}{
		{"4242424242424242", payment.BrandVisa, "4242"},
		{"4242 4242 4242 4242", payment.BrandVisa, "4242"},
		{"4242-4242-4242-4242", payment.BrandVisa, "4242"},
		{"5555555555554444", payment.BrandMastercard, "4444"},
		{"2223003122003222", payment.BrandMastercard, "3222"}, // the 2-series range
		{"378282246310005", payment.BrandAmex, "0005"},
		{"371449635398431", payment.BrandAmex, "8431"},
		{"6011111111111117", "", "1117"}, // Discover: not accepted
		{"3530111333300000", "", "0000"}, // JCB: not accepted
		{"424242424242424", "", "2424"},  // Visa prefix, wrong length
		{"123", "", ""},
	}
	for _, tc := range cases {
		c := payment.Card{Number: tc.number}
		if c.Brand() != tc.brand || c.Last4() != tc.last4 {
			t.Errorf("%s: brand %q last4 %q, want %q %q", tc.number, c.Brand(), c.Last4(), tc.brand, tc.last4)
		}
	}
}

func TestCardValidate(t *testing.T) {
	good := payment.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123", Holder: "Alice"}
	cases := []struct {
		name   string
		change func(*payment.Card)
		fields []string
	}{
		{"valid", func(*payment.Card) {}, nil},
		{"valid through the end of this month", func(c *payment.Card) { c.ExpMonth, c.ExpYear = 11, 2025 }, nil},
		{"valid Amex with a 4-digit CVC", func(c *payment.Card) { c.Number, c.CVC = "378282246310005", "1234" }, nil},
		{"expired last month", func(c *payment.Card) { c.ExpMonth, c.ExpYear = 10, 2025 }, []string{"card.expYear"}},
		{"expired last year", func(c *payment.Card) { c.ExpMonth, c.ExpYear = 12, 2024 }, []string{"card.expYear"}},
		{"Luhn check fails", func(c *payment.Card) { c.Number = "4242424242424241" }, []string{"card.number"}},
		{"letters", func(c *payment.Card) { c.Number = "4242x24242424242" }, []string{"card.number"}},
		{"too short", func(c *payment.Card) { c.Number = "42424242" }, []string{"card.number"}},
		{"missing number", func(c *payment.Card) { c.Number = "" }, []string{"card.number"}},
		{"brand not accepted", func(c *payment.Card) { c.Number = "6011111111111117" }, []string{"card.number"}},
		{"month 13", func(c *payment.Card) { c.ExpMonth = 13 }, []string{"card.expMonth"}},
		{"month 0", func(c *payment.Card) { c.ExpMonth = 0 }, []string{"card.expMonth"}},
		{"two-digit year", func(c *payment.Card) { c.ExpYear = 30 }, []string{"card.expYear"}},
		{"CVC too short", func(c *payment.Card) { c.CVC = "12" }, []string{"card.cvc"}},
		{"CVC not digits", func(c *payment.Card) { c.CVC = "12a" }, []string{"card.cvc"}},
		{"Amex with a 3-digit CVC", func(c *payment.Card) { c.Number = "378282246310005" }, []string{"card.cvc"}},
		{"holder too long", func(c *payment.Card) { c.Holder = strings.Repeat("a", 101) }, []string{"card.holder"}},
		{"everything wrong at once", func(c *payment.Card) { *c = payment.Card{Number: "1234", CVC: "x"} },
			[]string{"card.number", "card.expMonth", "card.cvc"}},
	}
	for _, tc := range cases {
		c := good
		tc.change(&c)
		var got []string
		for _, f := range c.Validate(now) {
			got = append(got, f.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.fields) {
			t.Errorf("%s: invalid fields %v, want %v", tc.name, got, tc.fields)
		}
	}
}

// TestCardNeverPrintsItsSecrets covers every way a Card value could end up in a log or a
// document: fmt verbs, slog and JSON.
func TestCardNeverPrintsItsSecrets(t *testing.T) {
	c := payment.Card{Number: "4000000000009995", ExpMonth: 7, ExpYear: 2031, CVC: "913", Holder: "Alice"}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("charging", "card", c, "ptr", &c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("charging", "card", c)
	js, _ := json.Marshal(map[string]any{"card": c})
	out := fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c) + fmt.Sprint(&c) + logs.String() + string(js)
	for _, secret := range []string{"4000000000009995", "913", "2031", "Alice"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%q leaked:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "9995") || !strings.Contains(out, "visa") {
		t.Fatalf("the redacted form should still show brand and last four:\n%s", out)
	}
}

func TestCredentialNeverPrintsTheToken(t *testing.T) {
	cr := payment.Credential{Token: "eyJhbGciOi.secret.token"}
	a := payment.Actor{Subject: "u-1", Credential: cr}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "cred", cr, "actor", a)
	out := fmt.Sprintf("%v %+v %#v", cr, a, a) + logs.String()
	if strings.Contains(out, "secret") {
		t.Fatalf("token leaked: %s", out)
	}
}

func TestAsChargedIsTheFirstAnswer(t *testing.T) {
	p := payment.Payment{Amount: payment.Money{Amount: 1000, Currency: "EUR"}, Refunded: 400,
		Status: payment.StatusPartiallyRefunded, Outcome: payment.StatusApproved, CreatedAt: now, UpdatedAt: now.Add(time.Hour)}
	first := p.AsCharged()
	if first.Status != payment.StatusApproved || first.Refunded != 0 || !first.UpdatedAt.Equal(now) || p.Refunded != 400 {
		t.Fatalf("as charged: %+v (original %+v)", first, p)
	}
	if p.Remaining() != 600 {
		t.Fatalf("remaining %d", p.Remaining())
	}
}
