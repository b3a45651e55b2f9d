package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"
)

// TestPayLosingARaceIs409: a second pay of the order arrives while the first one's charge
// is made but not yet answered. Both send the attempt's Idempotency-Key, so the payment
// service replays the first one's charge to the second. That charge is the first request's
// to report: the second is told the order is already paid (409), not 200 with a charge it
// did not make, and the card is charged once.
func TestPayLosingARaceIs409(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: mugID, Quantity: 1})
	e.pay.delay = 500 * time.Millisecond // the first answer waits after the charge

	first := make(chan response, 1)
	go func() {
		first <- e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved), "Idempotency-Key", "tab-1")
	}()
	for deadline := time.Now().Add(5 * time.Second); len(e.pay.charges()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first pay never reached the payment service")
		}
	}

	second := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved), "Idempotency-Key", "tab-2")
	if second.status != http.StatusConflict {
		t.Fatalf("the request that lost the race: %s", second)
	}
	if p := second.problem(t); !strings.Contains(p.Detail, "already been paid") {
		t.Fatalf("the loser is told %q", p.Detail)
	}
	won := <-first
	if won.status != http.StatusOK {
		t.Fatalf("the request whose charge it was: %s", won)
	}
	var paid orderOf
	won.decode(t, &paid)
	if n := len(e.pay.charges()); n != 1 {
		t.Fatalf("charged %d times", n)
	}
	if stored := e.storedOrder(o.ID); stored.Status != order.StatusPaid || stored.PaymentID != paid.PaymentID {
		t.Fatalf("stored %+v, answered payment %s", stored, paid.PaymentID)
	}
}

// TestConcurrentPaysOfOneOrder: many pay requests of one order at once, each with its own
// Idempotency-Key (the checkout sends the attempt's own key, whatever the client's): one
// is answered 200 with the paid order, every other one 409, and the card is charged once.
// Paying again afterwards is 409 without a call to the payment service.
func TestConcurrentPaysOfOneOrder(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	e.pay.delay = 50 * time.Millisecond // the first charge is answered while others arrive

	const n = 12
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved), "Idempotency-Key", uuid.NewString())
		})
	}
	wg.Wait()

	var ok []response
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok = append(ok, a)
		case http.StatusConflict:
			a.problem(t)
		default:
			t.Errorf("answer %s", a)
		}
	}
	if len(ok) != 1 {
		t.Fatalf("%d requests were told they paid, want 1", len(ok))
	}
	if charged := len(e.pay.charges()); charged != 1 {
		t.Fatalf("charged %d times", charged)
	}
	var paid orderOf
	ok[0].decode(t, &paid)
	if stored := e.storedOrder(o.ID); stored.Status != order.StatusPaid || stored.PaymentID != paid.PaymentID {
		t.Fatalf("stored %+v, answered payment %s", stored, paid.PaymentID)
	}

	calls := len(e.pay.callLog())
	if again := e.do(http.MethodPost, "/api/orders/"+o.ID+"/pay", r.alice, cardBody(cardApproved)); again.status != http.StatusConflict {
		t.Fatalf("paying the paid order again: %s", again)
	}
	if len(e.pay.callLog()) != calls {
		t.Fatal("a paid order was sent to the payment service again")
	}
}
