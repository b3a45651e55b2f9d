package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
)

// heldOrder is what the API says about an order's payment hold.
type heldOrder struct {
	ID           string     `json:"id"`
	Status       string     `json:"status"`
	PaymentDueAt *time.Time `json:"paymentDueAt"`
	CancelReason string     `json:"cancelReason"`
	CreatedAt    time.Time  `json:"createdAt"`
}

// TestUnpaidCapOverHTTP: a shopper at the cap gets a 409 that says why and what to do, and
// nothing changes; another shopper is not affected; a cancel frees a place.
func TestUnpaidCapOverHTTP(t *testing.T) {
	r := newRealm(t)
	rules := order.DefaultRules
	rules.MaxUnpaid = 2
	e := newEnv(t, r, withRules(rules))
	body := `{"items":[{"productId":"` + towelID + `","quantity":1}]}`
	var first heldOrder
	for i := range 2 {
		resp := e.do(http.MethodPost, "/api/orders", r.alice, body)
		if resp.status != http.StatusCreated {
			t.Fatalf("order %d: %s", i, resp)
		}
		if i == 0 {
			resp.decode(t, &first)
		}
	}
	before := e.snapshot()
	resp := e.do(http.MethodPost, "/api/orders", r.alice, body)
	if resp.status != http.StatusConflict {
		t.Fatalf("a third unpaid order: %s, want 409", resp)
	}
	var refusal struct {
		Detail string `json:"detail"`
		Reason string `json:"reason"`
	}
	resp.problem(t)
	resp.decode(t, &refusal)
	if !strings.Contains(refusal.Detail, "2 unpaid orders") || !strings.Contains(refusal.Detail, "pay or cancel one") || refusal.Reason != "too_many_unpaid_orders" {
		t.Fatalf("the refusal does not say why and what to do: %s", resp)
	}
	if e.snapshot() != before {
		t.Fatal("the refused order changed the database")
	}
	if resp := e.do(http.MethodPost, "/api/orders", r.bob, body); resp.status != http.StatusCreated {
		t.Fatalf("another shopper: %s", resp)
	}
	if resp := e.do(http.MethodPost, "/api/orders/"+first.ID+"/cancel", r.alice, nil); resp.status != http.StatusOK {
		t.Fatal(resp)
	}
	if resp := e.do(http.MethodPost, "/api/orders", r.alice, body); resp.status != http.StatusCreated {
		t.Fatalf("after a cancel: %s", resp)
	}
}

// TestTheShopsLimitsBoundAnOrder: limits set by configuration, lower than the defaults,
// are what the API holds an order to.
func TestTheShopsLimitsBoundAnOrder(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r, withRules(order.Rules{MaxLines: 1, MaxQuantity: 2, PaymentHold: time.Minute, MaxUnpaid: 3}))
	before := e.snapshot()
	for _, tc := range []struct{ body, field string }{
		{`{"items":[{"productId":"` + towelID + `","quantity":3}]}`, "items[0].quantity"},
		{`{"items":[{"productId":"` + towelID + `","quantity":1},{"productId":"` + mugID + `","quantity":1}]}`, "items"},
	} {
		resp := e.do(http.MethodPost, "/api/orders", r.alice, tc.body)
		if resp.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %s, want 422", tc.body, resp)
		}
		if p := resp.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Fatalf("%s: errors %+v, want %s", tc.body, p.Errors, tc.field)
		}
	}
	if e.snapshot() != before {
		t.Fatal("refused orders changed the database")
	}
	if resp := e.do(http.MethodPost, "/api/orders", r.alice, `{"items":[{"productId":"`+towelID+`","quantity":2}]}`); resp.status != http.StatusCreated {
		t.Fatalf("within the limits: %s", resp)
	}
}

// TestAnExpiredOrderOverHTTP: a new order says until when it must be paid; once expired it
// says so, and paying it is a 409 that never reaches the payment service.
func TestAnExpiredOrderOverHTTP(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	resp := e.do(http.MethodPost, "/api/orders", r.alice, `{"items":[{"productId":"`+towelID+`","quantity":2}]}`)
	var o heldOrder
	resp.decode(t, &o)
	if o.PaymentDueAt == nil || o.PaymentDueAt.Sub(o.CreatedAt) != order.DefaultRules.PaymentHold || o.CancelReason != "" {
		t.Fatalf("a new order: %s", resp)
	}
	stock := e.stock(towelID)
	expired, err := e.store.ExpireOverdue(t.Context(), time.Now().Add(time.Hour), 10,
		func(o order.Order) order.AuditEntry {
			return order.AuditEntry{Action: order.ActionOrderExpire, TargetID: o.ID}
		})
	if err != nil || len(expired) != 1 {
		t.Fatalf("expiry: %d, %v", len(expired), err)
	}
	if got := e.stock(towelID); got != stock+2 {
		t.Fatalf("stock %d after the expiry, want %d", got, stock+2)
	}
	resp = e.do(http.MethodGet, "/api/orders/"+o.ID, r.alice, nil)
	var got heldOrder
	resp.decode(t, &got)
	if got.Status != "cancelled" || got.CancelReason != "expired" || got.PaymentDueAt != nil {
		t.Fatalf("the expired order reads %s", resp)
	}
	resp = e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
	if resp.status != http.StatusConflict || !strings.Contains(resp.problem(t).Detail, "expired") || !strings.Contains(string(resp.body), `"reason":"order_expired"`) {
		t.Fatalf("paying the expired order: %s, want 409 saying it expired", resp)
	}
	if calls := e.pay.callLog(); len(calls) != 0 {
		t.Fatalf("the payment service was called for an expired order: %+v", calls)
	}
	if resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/cancel", r.alice, nil); resp.status != http.StatusConflict {
		t.Fatalf("cancelling it: %s", resp)
	}
}

// TestExpiryRacesACheckout: the expiry job and a shopper's payment reach an order at the
// same moment. Either the order expires, the shopper gets 409 and the payment service is
// never called; or the charge goes out, the order is paid and keeps its stock. Never both.
func TestExpiryRacesACheckout(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	seen := map[string]int{}
	for round := range 8 {
		resp := e.do(http.MethodPost, "/api/orders", r.alice, `{"items":[{"productId":"`+towelID+`","quantity":1}]}`)
		var o heldOrder
		resp.decode(t, &o)
		stock, calls := e.stock(towelID), len(e.pay.callLog())
		var (
			expired []order.Order
			eerr    error
			paid    response
			wg      sync.WaitGroup
		)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			// A head start that grows with the rounds for the checkout, which has more to
			// do, so both outcomes come up.
			time.Sleep(time.Duration(round) * 6 * time.Millisecond)
			expired, eerr = e.store.ExpireOverdue(context.Background(), time.Now().Add(time.Hour), 10,
				func(o order.Order) order.AuditEntry {
					return order.AuditEntry{Action: order.ActionOrderExpire, TargetID: o.ID}
				})
		})
		wg.Go(func() {
			<-start
			paid = e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved))
		})
		close(start)
		wg.Wait()
		if eerr != nil {
			t.Fatal(eerr)
		}
		got := e.storedOrder(o.ID)
		charged := len(e.pay.callLog()) - calls
		switch {
		case len(expired) == 1 && paid.status == http.StatusConflict && charged == 0 && got.Expired() && e.stock(towelID) == stock+1:
			seen["expired"]++
		case len(expired) == 0 && paid.status == http.StatusOK && charged == 1 && got.Status == order.StatusPaid && e.stock(towelID) == stock:
			seen["paid"]++
		default:
			t.Fatalf("round %d: expired %d, pay %s, %d charges, order %s/%s, stock %d (was %d)",
				round, len(expired), paid, charged, got.Status, got.CancelReason, e.stock(towelID), stock)
		}
	}
	t.Logf("outcomes: %v", seen)
}
