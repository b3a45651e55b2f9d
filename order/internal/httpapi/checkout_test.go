package httpapi_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
)

// TestCheckoutApproved: the charge goes to the payment service with the shopper's token,
// the request id and the order's payment key; the payment service reads the order back
// with that token and charges its total; the order becomes paid with the payment's id.
func TestCheckoutApproved(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 2}, order.Line{ProductID: mugID, Quantity: 1})
	wantTotal := 2*e.storedProduct(towelID).Price.Amount + e.storedProduct(mugID).Price.Amount

	// An amount in the request has nowhere to go.
	body := strings.Replace(cardBody(cardApproved), `{"card"`, `{"amount":{"amount":1,"currency":"EUR"},"total":1,"card"`, 1)
	resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, body, "X-Request-Id", "checkout-req-1")
	if resp.status != 200 {
		t.Fatalf("pay: %s", resp)
	}
	var paid orderOf
	resp.decode(t, &paid)
	if paid.Status != "paid" || paid.PaymentID == "" || paid.Total.Amount != wantTotal {
		t.Fatalf("paid order %s", resp.body)
	}
	calls := e.pay.callLog()
	if len(calls) != 1 {
		t.Fatalf("%d payment calls", len(calls))
	}
	c := calls[0]
	if c.Authorization != "Bearer "+r.alice {
		t.Fatal("the shopper's token was not propagated unchanged")
	}
	if c.RequestID != "checkout-req-1" {
		t.Fatalf("X-Request-Id %q", c.RequestID)
	}
	if c.IdempotencyKey != "order:"+o.ID+":attempt:0" {
		t.Fatalf("Idempotency-Key %q", c.IdempotencyKey)
	}
	if _, ok := c.Body["amount"]; ok || len(c.Body) != 2 || c.Body["orderId"] != o.ID {
		t.Fatalf("the charge request carries more than order and card: %v", c.Body)
	}
	if charged := e.pay.charges(); len(charged) != 1 || charged[0] != (money{wantTotal, "EUR"}) {
		t.Fatalf("charged %v, want the order total %d", charged, wantTotal)
	}
	if stored := e.storedOrder(o.ID); stored.Status != order.StatusPaid || stored.PaymentID != paid.PaymentID {
		t.Fatalf("stored %+v", stored)
	}
	// Paying again is refused here, before the payment service is asked.
	if resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved)); resp.status != 409 {
		t.Fatalf("paying a paid order: %s", resp)
	}
	if len(e.pay.callLog()) != 1 {
		t.Fatal("a paid order was sent to the payment service again")
	}
	// The card never reaches the logs.
	if logs := e.logs.String(); strings.Contains(logs, cardApproved) || strings.Contains(logs, `"cvc"`) {
		t.Fatal("card data in the logs")
	}
}

// TestCheckoutDeclinedThenPaid: a decline is 402 with the reason, the order stays payable,
// and the next attempt goes out under a new Idempotency-Key (the old one would replay the
// decline) and pays.
func TestCheckoutDeclinedThenPaid(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardDeclined))
	if resp.status != http.StatusPaymentRequired {
		t.Fatalf("declined: %s", resp)
	}
	var declined struct {
		Detail    string `json:"detail"`
		PaymentID string `json:"paymentId"`
		Reason    string `json:"reason"`
	}
	resp.problem(t)
	resp.decode(t, &declined)
	if declined.Reason != "card_declined" || declined.PaymentID == "" || !strings.Contains(declined.Detail, "card_declined") {
		t.Fatalf("the decline does not say why: %s", resp.body)
	}
	// The declined attempt is over: nothing for reconciliation to settle.
	if stored := e.storedOrder(o.ID); stored.Status != order.StatusPending || stored.PaymentAttempts != 1 || !stored.PaymentStartedAt.IsZero() {
		t.Fatalf("after a decline: %+v", stored)
	}
	resp = e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
	if resp.status != 200 {
		t.Fatalf("retry with another card: %s", resp)
	}
	calls := e.pay.callLog()
	if len(calls) != 2 || calls[0].IdempotencyKey == calls[1].IdempotencyKey || calls[1].IdempotencyKey != "order:"+o.ID+":attempt:1" {
		t.Fatalf("keys %q then %q", calls[0].IdempotencyKey, calls[1].IdempotencyKey)
	}
	if len(e.pay.charges()) != 1 {
		t.Fatal("charged more than once")
	}
}

// TestCheckoutPaymentServiceTrouble: down, failing, overloaded or refusing: the shopper
// gets a clear problem, the order stays pending, and the next try reuses the same payment
// key (nothing was definitively declined).
func TestCheckoutPaymentServiceTrouble(t *testing.T) {
	r := newRealm(t)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	cases := []struct {
		name   string
		opts   []envOption
		fail   int // status the fake answers, without charging
		card   string
		status int
		detail string
		// nextAttempt: the answer ended the attempt without a charge, so the next one
		// must use a new key; otherwise the retry must reuse the key.
		nextAttempt bool
	}{
		{name: "down", opts: []envOption{withPaymentURL(closed())}, card: cardApproved, status: 503, detail: "try again"},
		{name: "overloaded", fail: 503, card: cardApproved, status: 503, detail: "try again"},
		{name: "internal error", fail: 500, card: cardApproved, status: 502, detail: "try again"},
		{name: "gateway timeout", fail: 504, card: cardApproved, status: 504, detail: "try again"},
		{name: "token refused upstream", fail: 401, card: cardApproved, status: 502, detail: "try again"},
		{name: "charge in flight", fail: 409, card: cardApproved, status: 409, detail: "refused"},
		{name: "processor error", card: cardProcessor, status: 502, detail: "nothing was charged", nextAttempt: true},
		{name: "invalid card", card: "1234", status: 422, detail: "card number is invalid", nextAttempt: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, r, tc.opts...)
			o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
			e.pay.fail = tc.fail
			resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(tc.card))
			if resp.status != tc.status {
				t.Fatalf("status %s, want %d", resp, tc.status)
			}
			p := resp.problem(t)
			if !strings.Contains(p.Detail, tc.detail) || strings.Contains(p.Detail, "127.0.0.1") {
				t.Fatalf("detail %q, want it to say %q and nothing internal", p.Detail, tc.detail)
			}
			if tc.status == 503 && resp.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if tc.name == "invalid card" && (len(p.Errors) != 1 || p.Errors[0].Field != "card.number") {
				t.Fatalf("the payment service's field errors were not passed on: %s", resp.body)
			}
			attempts := 0
			if tc.nextAttempt {
				attempts = 1
			}
			stored := e.storedOrder(o.ID)
			if stored.Status != order.StatusPending || stored.PaymentAttempts != attempts || stored.PaymentID != "" {
				t.Fatalf("after %s: %+v, want pending at attempt %d", tc.name, stored, attempts)
			}
			if len(e.pay.charges()) != 0 {
				t.Fatal("charged")
			}
		})
	}
}

// TestCheckoutSlowPaymentIsNeverChargedTwice: the payment service charges but answers
// after the order service stopped waiting. The shopper gets 504 and the order stays
// pending; the retry carries the same Idempotency-Key, so the payment service replays the
// charge it made instead of making another, and the order is paid once.
func TestCheckoutSlowPaymentIsNeverChargedTwice(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r, withPaymentTimeout(150*time.Millisecond))
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	e.pay.delay = 600 * time.Millisecond
	start := time.Now()
	resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
	if resp.status != http.StatusGatewayTimeout {
		t.Fatalf("slow payment: %s", resp)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("waited %s for a 150ms timeout", waited)
	}
	resp.problem(t)
	// The attempt stays in flight: reconciliation settles it if the shopper never retries.
	if stored := e.storedOrder(o.ID); stored.Status != order.StatusPending || stored.PaymentAttempts != 0 || stored.PaymentStartedAt.IsZero() {
		t.Fatalf("after a timeout: %+v", stored)
	}

	resp = e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
	if resp.status != 200 {
		t.Fatalf("retry: %s", resp)
	}
	calls := e.pay.callLog()
	if len(calls) != 2 || calls[0].IdempotencyKey != calls[1].IdempotencyKey {
		t.Fatalf("the retry did not reuse the payment key: %d calls, first key %q", len(calls), calls[0].IdempotencyKey)
	}
	if n := len(e.pay.charges()); n != 1 {
		t.Fatalf("charged %d times", n)
	}
	var paid orderOf
	resp.decode(t, &paid)
	if paid.Status != "paid" || !e.storedOrder(o.ID).PaymentStartedAt.IsZero() {
		t.Fatalf("order %s, attempt still in flight: %v", resp.body, !e.storedOrder(o.ID).PaymentStartedAt.IsZero())
	}
}

// TestAdminMayPayAnOrderForItsOwner: the contract lets an admin pay any order; the payment
// service then reads the order with the admin's token.
func TestAdminMayPayAnOrderForItsOwner(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: mugID, Quantity: 1})
	if resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.admin, cardBody(cardApproved)); resp.status != 200 {
		t.Fatalf("admin pays: %s", resp)
	}
	if c := e.pay.callLog()[0]; c.Authorization != "Bearer "+r.admin {
		t.Fatal("the admin's token was not the one propagated")
	}
}

func TestPayNeedsACard(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: mugID, Quantity: 1})
	for body, want := range map[string]int{
		`{}`:                         422,
		`{"card":null}`:              422,
		`{"card":"4242"}`:            400,
		`{"card":{"expMonth":"12"}}`: 400,
	} {
		resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, body)
		if resp.status != want {
			t.Errorf("%s: %s, want %d", body, resp, want)
		}
		resp.problem(t)
	}
	if len(e.pay.callLog()) != 0 {
		t.Fatal("a request without a usable card reached the payment service")
	}
}
