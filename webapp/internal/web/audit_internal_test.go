package web

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"example.com/shop/webapp/internal/gateway"
)

const (
	auditOrderID   = "0190f3a2-7b1c-7d2e-8f00-000000000042"
	auditProductID = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d01"
	auditPaymentID = "5a1d7a52-6c1e-4d0a-9d6e-1f2a3b4c5d99"
)

func entry(actor, action, resource string, detail map[string]any) gateway.AuditEntry {
	e := gateway.AuditEntry{At: time.Now(), Action: action, Resource: resource, Detail: detail}
	e.Actor.Username = actor
	return e
}

// plain renders a sentence as text, with links as [text](href), for comparison.
func plain(s sentence) string {
	var b strings.Builder
	for _, p := range s {
		if p.Href != "" {
			b.WriteString("[" + p.Text + "](" + p.Href + ")")
		} else {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// machineWords are what an audit sentence must never show: action codes, JSON, key=value
// pairs, ids, and the minor units of the amounts below.
var machineWords = regexp.MustCompile(`[a-z]+\.[a-z-]+|[{}"]|=|[0-9a-f]{8}-[0-9a-f]{4}|_|\b(4200|3900|3600|3100|500)\b`)

// TestEveryAuditActionIsASentence: each action the services record reads as a sentence
// with formatted money, names, order numbers and links, and without machine words.
func TestEveryAuditActionIsASentence(t *testing.T) {
	numbers := map[string]int64{auditOrderID: 10042}
	eur := func(cents float64) map[string]any { return map[string]any{"amount": cents, "currency": "EUR"} }
	product := "/admin/products/" + auditProductID + "/edit"
	order := "/admin/orders/" + auditOrderID
	for _, c := range []struct {
		name  string
		entry gateway.AuditEntry
		want  string
	}{
		{"product added", entry("ada", "product.create", "product/"+auditProductID,
			map[string]any{"name": "Teapot", "price": eur(4200), "stock": 5.0, "active": true}),
			"ada added [Teapot](" + product + ") to the catalog at €42.00, 5 in stock."},
		{"product changed", entry("ada", "product.update", "product/"+auditProductID,
			map[string]any{"name": "Teapot", "changes": map[string]any{
				"price": map[string]any{"from": eur(4200), "to": eur(3900)},
				"stock": map[string]any{"from": 5.0, "to": 12.0},
				"name":  map[string]any{"from": "Tea pot", "to": "Teapot"},
			}}),
			"ada changed [Teapot](" + product + "): renamed from “Tea pot” to “Teapot”; price from €42.00 to €39.00; stock from 5 to 12."},
		{"product brought back", entry("ada", "product.update", "product/"+auditProductID,
			map[string]any{"name": "Teapot", "changes": map[string]any{"active": map[string]any{"from": false, "to": true}}}),
			"ada changed [Teapot](" + product + "): back in the catalog."},
		{"product saved unchanged", entry("ada", "product.update", "product/"+auditProductID,
			map[string]any{"name": "Teapot", "changes": map[string]any{}}),
			"ada changed [Teapot](" + product + "), but nothing in it was different."},
		{"product retired", entry("ada", "product.retire", "product/"+auditProductID, map[string]any{"name": "Teapot"}),
			"ada retired Teapot: shoppers no longer see it."},
		{"order deleted", entry("ada", "order.delete", "order/"+auditOrderID,
			map[string]any{"number": 10042.0, "customer": "alice", "status": "paid", "total": eur(3600), "ownerSubject": "alice-sub"}),
			"ada deleted order 10042 (placed by alice, paid, €36.00)."},
		{"refund recorded", entry("payment-service", "order.refund-recorded", "order/"+auditOrderID,
			map[string]any{"number": 10042.0, "paymentId": auditPaymentID, "refundId": "r1", "refunded": eur(500), "status": "paid"}),
			"The payment service reported a refund on [order 10042](" + order + "): €5.00 refunded so far."},
		{"refunded in full", entry("payment-service", "order.refund-recorded", "order/"+auditOrderID,
			map[string]any{"number": 10042.0, "refunded": eur(3600), "status": "refunded"}),
			"The payment service reported a refund on [order 10042](" + order + "): €36.00 refunded so far, the whole order."},
		{"settled by notice", entry("payment-service", "order.payment-settled", "order/"+auditOrderID,
			map[string]any{"number": 10042.0, "paymentId": auditPaymentID, "by": "payment notice", "amount": eur(3600)}),
			"The payment service marked [order 10042](" + order + ") paid (€36.00) on the payment service's notice, as the checkout never heard back."},
		{"settled by reconciliation", entry("order-service", "order.payment-settled", "order/"+auditOrderID,
			map[string]any{"number": 10042.0, "by": "reconciliation", "amount": eur(3600)}),
			"The order service marked [order 10042](" + order + ") paid (€36.00) after checking with the payment service, as the checkout never heard back."},
		{"unpaid order expired", entry("order-service", "order.expire", "order/"+auditOrderID,
			map[string]any{"customer": "alice", "ownerSubject": "alice-sub", "paymentDueAt": "2026-12-04T10:15:00Z", "total": eur(3600)}),
			"The order service cancelled [order 10042](" + order + ") (placed by alice, €36.00): it was not paid in time, so its items went back on sale."},
		{"payment refunded", entry("ada", "payment.refund", "payment/"+auditPaymentID,
			map[string]any{"refundId": "r1", "orderId": auditOrderID, "amount": 500.0, "currency": "EUR", "fullyRefunded": false}),
			"ada refunded €5.00 of the payment for [order 10042](" + order + ")."},
		{"payment refunded in full", entry("ada", "payment.refund", "payment/"+auditPaymentID,
			map[string]any{"orderId": auditOrderID, "amount": 3100.0, "currency": "EUR", "fullyRefunded": true}),
			"ada refunded €31.00 of the payment for [order 10042](" + order + "): nothing of it is left to refund."},
		{"an order the page could not number", entry("ada", "payment.refund", "payment/"+auditPaymentID,
			map[string]any{"orderId": "0190f3a2-7b1c-7d2e-8f00-000000000099", "amount": 500.0, "currency": "EUR"}),
			"ada refunded €5.00 of the payment for [an order](/admin/orders/0190f3a2-7b1c-7d2e-8f00-000000000099)."},
		{"detail=null from an older release", entry("ada", "product.retire", "product/"+auditProductID, nil),
			"ada retired a product: shoppers no longer see it."},
		{"unknown action on an order", entry("ada", "order.archive", "order/"+auditOrderID, map[string]any{"x": 1.0}),
			"ada made a change this console cannot describe yet, to [order 10042](" + order + ")."},
		{"unknown action on something unknown", entry("", "warehouse.restock", "shelf/7", nil),
			"Someone made a change this console cannot describe yet."},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := plain(describe(c.entry, numbers))
			if got != c.want {
				t.Fatalf("\n got %s\nwant %s", got, c.want)
			}
			var text strings.Builder
			for _, p := range describe(c.entry, numbers) {
				text.WriteString(p.Text)
			}
			if m := machineWords.FindString(text.String()); m != "" {
				t.Fatalf("%q shows machine words (%q)", text.String(), m)
			}
		})
	}
}

// TestDeclineSentences: every reason the payment service gives has its own sentence, an
// unknown one a general sentence; none shows the code.
func TestDeclineSentences(t *testing.T) {
	seen := map[string]string{}
	for _, reason := range []string{"card_declined", "insufficient_funds", "processor_error", "stolen_card", ""} {
		s := declineSentence(reason)
		if s == "" || strings.Contains(s, "_") || (reason != "" && strings.Contains(s, reason)) {
			t.Errorf("%q: %q", reason, s)
		}
		if other, dup := seen[s]; dup && reason != "stolen_card" && reason != "" {
			t.Errorf("%q and %q read the same: %q", reason, other, s)
		}
		seen[s] = reason
		if label := declineLabel(reason); strings.Contains(label, "_") || (reason != "" && label == "") {
			t.Errorf("label of %q: %q", reason, label)
		}
	}
	if declineSentence("stolen_card") != declineFallback || declineSentence("card_declined") == declineFallback {
		t.Fatal("unknown reasons must get the general sentence, known ones their own")
	}
}

func TestParseOrderNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"10042", 10042, true}, {" #10042 ", 10042, true}, {"Order 10042", 10042, true}, {"order #7", 7, true},
		{"0", 0, false}, {"-1", 0, false}, {"+5", 0, false}, {"10042x", 0, false}, {"01a24197", 0, false}, {"99999999999999999999", 0, false},
	} {
		if got, ok := parseOrderNumber(c.in); got != c.want || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
