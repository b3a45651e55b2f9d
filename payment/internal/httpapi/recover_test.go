package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
)

// leftProcessing records a payment of order as the charge request does before it asks the
// processor, and stops there, as a crash would; charged says whether the processor got the
// charge before the crash.
func (e *env) leftProcessing(order string, amount int64, charged bool) string {
	e.t.Helper()
	ctx := e.t.Context()
	now := e.clock.Now().Truncate(time.Microsecond)
	p := payment.Payment{
		ID: uuid.NewString(), OrderID: order, UserID: aliceSub, Amount: payment.Money{Amount: amount, Currency: "EUR"},
		Status: payment.StatusProcessing, CardBrand: payment.BrandVisa, CardLast4: "4242", CreatedAt: now, UpdatedAt: now,
	}
	if err := e.store.Reserve(ctx, p, payment.Idempotency{Subject: aliceSub, Key: "crashed-" + p.ID, Fingerprint: "f"}); err != nil {
		e.t.Fatal(err)
	}
	if charged {
		card := payment.Card{Number: processor.CardApproved, ExpMonth: 12, ExpYear: now.Year() + 3, CVC: "123"}
		if _, err := e.proc.Simulated.Charge(ctx, payment.Charge{Reference: p.ID, Amount: p.Amount, Card: card}); err != nil {
			e.t.Fatal(err)
		}
	}
	return p.ID
}

// TestRecoverSettlesPaymentsLeftProcessing: a payment whose request died between the
// processor and the database is settled from the processor's record, once: the approved
// one becomes approved with its paid notice, the one that never reached the processor
// fails and frees its order for a new charge, and a payment still within its request's
// time is left alone.
func TestRecoverSettlesPaymentsLeftProcessing(t *testing.T) {
	e := newTestEnv(t)
	ctx := t.Context()
	chargedOrder := e.orders.add(aliceSub, "pending", 2599)
	lostOrder := e.orders.add(aliceSub, "pending", 1500)
	charged := e.leftProcessing(chargedOrder, 2599, true)
	lost := e.leftProcessing(lostOrder, 1500, false)

	// Within RecoverAfter the request may still be running: nothing is touched, and the
	// order's slot stays held.
	if n, err := e.svc.Recover(ctx, 100); err != nil || n != 0 {
		t.Fatalf("early recovery settled %d (%v), want 0", n, err)
	}
	if r := e.charge(owner, lostOrder, processor.CardApproved, "retry-early"); r.status != http.StatusConflict {
		t.Fatalf("charging an order whose payment is processing: %d %s, want 409", r.status, r.body)
	}

	e.clock.Advance(payment.RecoverAfter + time.Second)
	recentOrder := e.orders.add(aliceSub, "pending", 700)
	recent := e.leftProcessing(recentOrder, 700, true)

	if n, err := e.svc.Recover(ctx, 100); err != nil || n != 2 {
		t.Fatalf("recovery settled %d (%v), want 2", n, err)
	}
	if p := e.payment(charged); p.Status != payment.StatusApproved || p.Outcome != payment.StatusApproved {
		t.Fatalf("charged payment after recovery: %+v, want approved", p)
	}
	if p := e.payment(lost); p.Status != payment.StatusFailed || p.Reason != payment.ReasonProcessorError {
		t.Fatalf("payment that never reached the processor: %+v, want failed", p)
	}
	if p := e.payment(recent); p.Status != payment.StatusProcessing {
		t.Fatalf("payment within its request's time: %+v, want processing", p)
	}
	if n := e.relay.Flush(ctx); n != 1 {
		t.Fatalf("delivered %d notices, want the recovered approval's", n)
	}
	if got := e.orders.receivedOf("paid"); len(got) != 1 || got[0].orderID != chargedOrder {
		t.Fatalf("paid notices %+v, want one for %s", got, chargedOrder)
	}

	// Exactly once: a second run finds nothing, sends nothing.
	if n, err := e.svc.Recover(ctx, 100); err != nil || n != 0 {
		t.Fatalf("second recovery settled %d (%v), want 0", n, err)
	}
	if n := e.relay.Flush(ctx); n != 0 {
		t.Fatalf("second recovery sent %d more notices", n)
	}
	// The failed payment no longer holds its order: the shopper can pay it.
	r := e.charge(owner, lostOrder, processor.CardApproved, "retry-after-recovery")
	if r.status != http.StatusCreated || r.json(t)["status"] != "approved" {
		t.Fatalf("paying the freed order: %d %s", r.status, r.body)
	}
}

// TestChargeAnswersTheRecoveredOutcome: when recovery settles a payment while its own
// request is still on its way back from the processor, the request answers with that
// outcome instead of failing, and the order is reported paid once.
func TestChargeAnswersTheRecoveredOutcome(t *testing.T) {
	e := newTestEnv(t)
	order := e.orders.add(aliceSub, "pending", 2599)
	recovered := 0
	e.proc.charged = func(payment.Charge) {
		e.clock.Advance(payment.RecoverAfter + time.Second)
		n, err := e.svc.Recover(context.Background(), 100)
		if err != nil {
			t.Error(err)
		}
		recovered += n
	}
	r := e.charge(owner, order, processor.CardApproved, "k-slow")
	if r.status != http.StatusCreated || r.json(t)["status"] != "approved" || recovered != 1 {
		t.Fatalf("charge settled by recovery meanwhile: %d %s (recovered %d)", r.status, r.body, recovered)
	}
	if n := e.relay.Flush(t.Context()); n != 1 {
		t.Fatalf("delivered %d notices, want 1", n)
	}
}
