package order_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"

	"example.com/shop/platform/validation"
)

var statuses = []order.Status{order.StatusPending, order.StatusPaid, order.StatusCancelled, order.StatusRefunded}

// TestLifecycle spells out every pair of statuses: only the three moves of the contract
// are allowed.
func TestLifecycle(t *testing.T) {
	allowed := map[[2]order.Status]bool{
		{order.StatusPending, order.StatusPaid}:      true,
		{order.StatusPending, order.StatusCancelled}: true,
		{order.StatusPaid, order.StatusRefunded}:     true,
	}
	for _, from := range statuses {
		for _, to := range statuses {
			if got := from.CanBecome(to); got != allowed[[2]order.Status{from, to}] {
				t.Errorf("%s -> %s: %v", from, to, got)
			}
		}
	}
	for _, s := range statuses {
		if got, ok := order.ParseStatus(string(s)); !ok || got != s {
			t.Errorf("ParseStatus(%s)", s)
		}
	}
	for _, s := range []string{"", "PAID", "shipped", " pending"} {
		if _, ok := order.ParseStatus(s); ok {
			t.Errorf("ParseStatus(%q) accepted", s)
		}
	}
}

// widest are the largest rules a configuration may set.
var widest = order.Rules{MaxLines: order.MaxLines, MaxQuantity: order.MaxQuantity}

func TestValidateLines(t *testing.T) {
	a, b := uuid.NewString(), uuid.NewString()
	many := make([]order.Line, order.MaxLines+1)
	for i := range many {
		many[i] = order.Line{ProductID: uuid.NewString(), Quantity: 1}
	}
	cases := []struct {
		name   string
		lines  []order.Line
		fields []string // nil: valid
	}{
		{"one line", []order.Line{{a, 1}}, nil},
		{"bounds", []order.Line{{a, order.MinQuantity}, {b, order.MaxQuantity}}, nil},
		{"fifty lines", many[:order.MaxLines], nil},
		{"no lines", nil, []string{"items"}},
		{"fifty-one lines", many, []string{"items"}},
		{"zero", []order.Line{{a, 0}}, []string{"items[0].quantity"}},
		{"negative", []order.Line{{a, -1}}, []string{"items[0].quantity"}},
		{"above the maximum", []order.Line{{a, 101}}, []string{"items[0].quantity"}},
		{"no product", []order.Line{{"", 1}}, []string{"items[0].productId"}},
		{"not an id", []order.Line{{"mug", 1}}, []string{"items[0].productId"}},
		{"braced uuid", []order.Line{{"{" + a + "}", 1}}, []string{"items[0].productId"}},
		{"upper-case uuid", []order.Line{{strings.ToUpper(a), 1}}, []string{"items[0].productId"}},
		{"duplicate", []order.Line{{a, 1}, {b, 1}, {a, 2}}, []string{"items[2].productId"}},
		{"everything at once", []order.Line{{"x", 0}, {a, 200}}, []string{"items[0].productId", "items[0].quantity", "items[1].quantity"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := order.ValidateLines(tc.lines, widest)
			if tc.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *validation.Error
			if !errors.As(err, &ve) || !errors.Is(err, validation.ErrInvalid) {
				t.Fatalf("err %v, want a ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestPriceTakesPricesFromTheCatalog(t *testing.T) {
	mug := order.Product{ID: uuid.NewString(), Name: "Mug", Price: order.EUR(1800), Active: true}
	towel := order.Product{ID: uuid.NewString(), Name: "Towel", Price: order.EUR(1290), Active: true}
	retired := order.Product{ID: uuid.NewString(), Name: "Old", Price: order.EUR(100), Active: false}
	catalog := map[string]order.Product{mug.ID: mug, towel.ID: towel, retired.ID: retired}

	items, total, err := order.Price([]order.Line{{towel.ID, 3}, {mug.ID, 1}}, catalog)
	if err != nil {
		t.Fatal(err)
	}
	if total != order.EUR(3*1290+1800) {
		t.Fatalf("total %+v", total)
	}
	want := []order.Item{
		{ProductID: towel.ID, Name: "Towel", UnitPrice: order.EUR(1290), Quantity: 3, LineTotal: order.EUR(3870)},
		{ProductID: mug.ID, Name: "Mug", UnitPrice: order.EUR(1800), Quantity: 1, LineTotal: order.EUR(1800)},
	}
	if len(items) != 2 || items[0] != want[0] || items[1] != want[1] {
		t.Fatalf("items %+v", items)
	}

	_, _, err = order.Price([]order.Line{{mug.ID, 1}, {retired.ID, 1}, {uuid.NewString(), 1}}, catalog)
	var ve *validation.Error
	if !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[0].Field != "items[1].productId" || ve.Fields[1].Field != "items[2].productId" {
		t.Fatalf("err %v, want retired and unknown products named", err)
	}

	dollars := order.Product{ID: uuid.NewString(), Name: "Import", Price: order.Money{Amount: 100, Currency: "USD"}, Active: true}
	if _, _, err := order.Price([]order.Line{{dollars.ID, 1}}, map[string]order.Product{dollars.ID: dollars}); err == nil || errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("a product in another currency: %v (want an internal error, not the caller's fault)", err)
	}

	// The largest possible order stays far from overflow.
	big := order.Product{ID: uuid.NewString(), Price: order.EUR(order.MaxUnitPrice), Active: true}
	lines := make([]order.Line, order.MaxLines)
	cat := map[string]order.Product{}
	for i := range lines {
		p := big
		p.ID = uuid.NewString()
		cat[p.ID] = p
		lines[i] = order.Line{ProductID: p.ID, Quantity: order.MaxQuantity}
	}
	if _, total, err := order.Price(lines, cat); err != nil || total.Amount != int64(order.MaxLines*order.MaxQuantity)*order.MaxUnitPrice {
		t.Fatalf("largest order: %+v, %v", total, err)
	}
}

func TestFingerprintIgnoresLineOrderOnly(t *testing.T) {
	a, b := uuid.NewString(), uuid.NewString()
	base := order.Fingerprint([]order.Line{{a, 1}, {b, 2}})
	if order.Fingerprint([]order.Line{{b, 2}, {a, 1}}) != base {
		t.Fatal("line order changed the fingerprint")
	}
	for _, other := range [][]order.Line{{{a, 2}, {b, 1}}, {{a, 1}}, {{a, 1}, {b, 2}, {uuid.NewString(), 1}}} {
		if order.Fingerprint(other) == base {
			t.Fatalf("%v has the same fingerprint", other)
		}
	}
}

func TestPaymentKeyMovesWithTheAttempt(t *testing.T) {
	o := order.Order{ID: uuid.NewString()}
	first := o.PaymentKey()
	if first != o.PaymentKey() {
		t.Fatal("the key is not stable")
	}
	o.PaymentAttempts++
	if o.PaymentKey() == first {
		t.Fatal("the key did not move with the attempt")
	}
	if len(o.PaymentKey()) > 128 || strings.ContainsAny(o.PaymentKey(), " /;") {
		t.Fatalf("key %q is not a valid Idempotency-Key", o.PaymentKey())
	}
}

func TestWhoMayDeleteAndPay(t *testing.T) {
	for _, s := range statuses {
		o := order.Order{Status: s}
		ownerMay := s == order.StatusPending || s == order.StatusCancelled
		if err := o.CheckDeletable(false); (err == nil) != ownerMay || (err != nil && !errors.Is(err, order.ErrInvalidTransition)) {
			t.Errorf("owner deletes %s: %v", s, err)
		}
		if err := o.CheckDeletable(true); err != nil {
			t.Errorf("admin deletes %s: %v", s, err)
		}
		if err := o.CheckPayable(); (err == nil) != (s == order.StatusPending) {
			t.Errorf("pay %s: %v", s, err)
		}
	}
}

func TestApplyRefund(t *testing.T) {
	paid := func() order.Order {
		return order.Order{Status: order.StatusPaid, Total: order.EUR(1000), Refunded: order.EUR(0), PaymentID: "pay-1"}
	}
	cases := []struct {
		name         string
		start        func() order.Order
		payment      string
		amount       int64
		fully        bool
		err          error
		changed      bool
		wantStatus   order.Status
		wantRefunded int64
	}{
		{"partial", paid, "pay-1", 400, false, nil, true, order.StatusPaid, 400},
		{"full", paid, "pay-1", 1000, true, nil, true, order.StatusRefunded, 1000},
		{"fully flag without the full amount", paid, "pay-1", 400, true, validation.ErrInvalid, false, order.StatusPaid, 0},
		{"full amount without the flag", paid, "pay-1", 1000, false, validation.ErrInvalid, false, order.StatusPaid, 0},
		{"more than the total", paid, "pay-1", 1001, true, validation.ErrInvalid, false, order.StatusPaid, 0},
		{"zero", paid, "pay-1", 0, false, validation.ErrInvalid, false, order.StatusPaid, 0},
		{"no payment id", paid, "", 400, false, validation.ErrInvalid, false, order.StatusPaid, 0},
		{"another payment", paid, "pay-2", 400, false, order.ErrPaymentMismatch, false, order.StatusPaid, 0},
		{"pending order", func() order.Order { o := paid(); o.Status = order.StatusPending; return o }, "pay-1", 400, false, order.ErrInvalidTransition, false, order.StatusPending, 0},
		{"cancelled order", func() order.Order { o := paid(); o.Status = order.StatusCancelled; return o }, "pay-1", 1000, true, order.ErrInvalidTransition, false, order.StatusCancelled, 0},
		{"stale report", func() order.Order { o := paid(); o.Refunded = order.EUR(600); return o }, "pay-1", 400, false, nil, false, order.StatusPaid, 600},
		{"repeat of the full refund", func() order.Order {
			o := paid()
			o.Status, o.Refunded = order.StatusRefunded, order.EUR(1000)
			return o
		}, "pay-1", 1000, true, nil, false, order.StatusRefunded, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.start()
			changed, err := o.ApplyRefund(tc.payment, tc.amount, tc.fully)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if changed != tc.changed || o.Status != tc.wantStatus || o.Refunded.Amount != tc.wantRefunded {
				t.Fatalf("changed %v, status %s, refunded %d", changed, o.Status, o.Refunded.Amount)
			}
		})
	}
}

func TestProductInputNormalize(t *testing.T) {
	ok := order.ProductInput{Name: "  Teapot ", Description: "Cast iron.\nHolds 1 l.", Price: order.EUR(4200), Stock: 0}
	if err := ok.Normalize(); err != nil || ok.Name != "Teapot" {
		t.Fatalf("%+v: %v", ok, err)
	}
	cases := []struct {
		field string
		in    order.ProductInput
	}{
		{"name", order.ProductInput{Name: " ", Price: order.EUR(1)}},
		{"name", order.ProductInput{Name: strings.Repeat("x", order.MaxNameLen+1), Price: order.EUR(1)}},
		{"name", order.ProductInput{Name: "two\nlines", Price: order.EUR(1)}},
		{"name", order.ProductInput{Name: "bad \xff utf-8", Price: order.EUR(1)}},
		{"description", order.ProductInput{Name: "x", Description: strings.Repeat("x", order.MaxDescriptionLen+1), Price: order.EUR(1)}},
		{"price.amount", order.ProductInput{Name: "x", Price: order.EUR(0)}},
		{"price.amount", order.ProductInput{Name: "x", Price: order.EUR(order.MaxUnitPrice + 1)}},
		{"price.currency", order.ProductInput{Name: "x", Price: order.Money{Amount: 1, Currency: "usd"}}},
		{"stock", order.ProductInput{Name: "x", Price: order.EUR(1), Stock: -1}},
		{"stock", order.ProductInput{Name: "x", Price: order.EUR(1), Stock: order.MaxStock + 1}},
	}
	for _, tc := range cases {
		err := tc.in.Normalize()
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tc.field {
			t.Errorf("%+v: %v, want only %s refused", tc.in, err, tc.field)
		}
	}
}
