package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/outbox"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
)

func (e *env) refund(paymentID string, body any, key string) response {
	e.t.Helper()
	return e.call(req{method: "POST", path: "/api/payments/" + paymentID + "/refunds", as: admin, key: key, body: body})
}

// TestRefundLimits walks a payment of 2599 from approved to refunded, with every refusal
// on the way: each refused refund changes nothing.
func TestRefundLimits(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	steps := []struct {
		name     string
		id       string
		body     any
		status   int
		refunded int64
		state    payment.Status
	}{
		{"zero", id, map[string]any{"amount": 0}, 422, 0, payment.StatusApproved},
		{"negative", id, map[string]any{"amount": -5}, 422, 0, payment.StatusApproved},
		{"more than charged", id, map[string]any{"amount": 2600}, 422, 0, payment.StatusApproved},
		{"a string", id, `{"amount": "500"}`, 400, 0, payment.StatusApproved},
		{"a fraction", id, `{"amount": 5.5}`, 400, 0, payment.StatusApproved},
		{"beyond int64", id, `{"amount": 99999999999999999999}`, 400, 0, payment.StatusApproved},
		{"malformed", id, `{"amount": `, 400, 0, payment.StatusApproved},
		{"part", id, map[string]any{"amount": 1000}, 201, 1000, payment.StatusPartiallyRefunded},
		{"more than remains", id, map[string]any{"amount": 1600}, 422, 1000, payment.StatusPartiallyRefunded},
		{"the rest, by leaving the amount out", id, map[string]any{}, 201, 2599, payment.StatusRefunded},
		{"anything more", id, map[string]any{"amount": 1}, 409, 2599, payment.StatusRefunded},
		{"an unknown payment", uuid.NewString(), map[string]any{"amount": 1}, 404, 2599, payment.StatusRefunded},
		{"a malformed id", "not-a-uuid", map[string]any{"amount": 1}, 404, 2599, payment.StatusRefunded},
	}
	for _, s := range steps {
		before := e.dump()
		r := e.refund(s.id, s.body, uuid.NewString())
		if r.status != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, r.status, s.status, r.body)
		}
		p := e.payment(id)
		if p.Refunded != s.refunded || p.Status != s.state {
			t.Fatalf("%s: payment %s refunded %d, want %s %d", s.name, p.Status, p.Refunded, s.state, s.refunded)
		}
		if r.status >= 400 {
			r.problem(t)
			if e.dump() != before {
				t.Fatalf("%s: a refused refund changed the store", s.name)
			}
		}
	}
	full := e.refund(id, nil, uuid.NewString())
	if full.status != 409 {
		t.Fatalf("a refund with no body on a refunded payment: %d", full.status)
	}

	// Only approved payments can be refunded at all.
	declined := e.orders.add(aliceSub, "pending", 500)
	d := e.charge(owner, declined, processor.CardDeclined, uuid.NewString()).json(t)["paymentId"].(string)
	if r := e.refund(d, nil, uuid.NewString()); r.status != 409 {
		t.Fatalf("refund of a declined payment: %d %s", r.status, r.body)
	}
}

func TestRefundWithoutBodyRefundsEverything(t *testing.T) {
	e := newTestEnv(t)
	id, order := e.paid(1250)
	r := e.refund(id, nil, "all")
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	b := r.json(t)
	if b["fullyRefunded"] != true || b["orderId"] != order || b["amount"].(map[string]any)["amount"] != 1250.0 {
		t.Fatalf("refund %v", b)
	}
}

// TestRefundTakesOnlyTheAmountFromTheBody: a refund body cannot pick another payment, set
// the status or the refunded total.
func TestRefundTakesOnlyTheAmountFromTheBody(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	other, _ := e.paid(1000)
	r := e.refund(id, map[string]any{"amount": 100, "paymentId": other, "status": "refunded", "refunded": 2599,
		"fullyRefunded": true, "orderId": uuid.NewString()}, "r-1")
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if p := e.payment(id); p.Refunded != 100 || p.Status != payment.StatusPartiallyRefunded {
		t.Fatalf("refunded payment: %+v", p)
	}
	if p := e.payment(other); p.Refunded != 0 || p.Status != payment.StatusApproved {
		t.Fatalf("the other payment changed: %+v", p)
	}
	if r.json(t)["fullyRefunded"] != false {
		t.Fatalf("refund %s", r.body)
	}
}

func TestRefundIdempotency(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	first := e.refund(id, map[string]any{"amount": 500}, "refund-1")
	again := e.refund(id, map[string]any{"amount": 500}, "refund-1")
	if first.status != 201 || again.status != 201 || string(again.body) != string(first.body) || again.header.Get(httpapi.HeaderReplayed) != "true" {
		t.Fatalf("replay: %d %s / %d %s", first.status, first.body, again.status, again.body)
	}
	if p := e.payment(id); p.Refunded != 500 {
		t.Fatalf("a replayed refund refunded again: %d", p.Refunded)
	}
	other, _ := e.paid(100)
	for name, call := range map[string]func() response{
		"another amount":  func() response { return e.refund(id, map[string]any{"amount": 600}, "refund-1") },
		"another payment": func() response { return e.refund(other, map[string]any{"amount": 500}, "refund-1") },
	} {
		if r := call(); r.status != 422 {
			t.Errorf("same key, %s: %d %s", name, r.status, r.body)
		}
	}
	if p := e.payment(id); p.Refunded != 500 {
		t.Fatalf("refunded %d after the refused reuses", p.Refunded)
	}
}

// TestConcurrentRefundsNeverExceedTheCharge: ten admins refund 1000 of 2599 at once; two
// fit, and the payment ends at exactly 2000.
func TestConcurrentRefundsNeverExceedTheCharge(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	const n = 10
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = e.refund(id, map[string]any{"amount": 1000}, uuid.NewString()).status })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 201:
			ok++
		case 422, 409:
		default:
			t.Errorf("status %d", s)
		}
	}
	refunds, _ := e.store.Refunds(t.Context(), id)
	if p := e.payment(id); ok != 2 || p.Refunded != 2000 || len(refunds) != 2 {
		t.Fatalf("statuses %v: refunded %d with %d refunds, want 2000 with 2", statuses, p.Refunded, len(refunds))
	}
}

// TestRefundNoticeSurvivesTheOrderServiceBeingDown: notices are committed with their
// refunds, retried with backoff while the order service fails, and delivered once it is
// back, with the payment service's own token (never the admin's), the refund id, the
// request id and the refunded total.
func TestRefundNoticeSurvivesTheOrderServiceBeingDown(t *testing.T) {
	e := newTestEnv(t)
	id, order := e.paid(2599)
	ctx := t.Context()
	if n := e.relay.Flush(ctx); n != 1 {
		t.Fatalf("the approval's paid notice: delivered %d, want 1", n)
	}
	e.orders.set(func(f *fakeOrders) { f.fail = http.StatusServiceUnavailable })
	first := e.refund(id, map[string]any{"amount": 600}, "r-1")
	second := e.refund(id, map[string]any{"amount": 400}, "r-2")
	if first.status != 201 || second.status != 201 {
		t.Fatalf("refunds must not depend on the order service: %d %s / %d %s", first.status, first.body, second.status, second.body)
	}

	for attempt := 1; attempt <= 3; attempt++ {
		if n := e.relay.Flush(ctx); n != 0 {
			t.Fatalf("attempt %d: delivered to a service that is down", attempt)
		}
		due, _ := e.store.DueNotices(ctx, e.clock.Now().Add(time.Hour), 10)
		if len(due) != 2 || due[0].Attempts != attempt || due[1].Attempts != attempt {
			t.Fatalf("attempt %d: pending notices %+v", attempt, due)
		}
		if now, _ := e.store.DueNotices(ctx, e.clock.Now(), 10); len(now) != 0 {
			t.Fatalf("attempt %d: failed notices are retried without backing off", attempt)
		}
		e.clock.Advance(time.Minute) // past the backoff
	}

	e.orders.set(func(f *fakeOrders) { f.fail = 0 })
	if n := e.relay.Flush(ctx); n != 2 {
		t.Fatalf("delivered %d of 2 once the order service was back", n)
	}
	want := map[string]string{ // refund id -> body
		first.json(t)["id"].(string):  fmt.Sprint(map[string]any{"paymentId": id, "refundId": first.json(t)["id"], "amount": 600.0, "fullyRefunded": false}),
		second.json(t)["id"].(string): fmt.Sprint(map[string]any{"paymentId": id, "refundId": second.json(t)["id"], "amount": 1000.0, "fullyRefunded": false}),
	}
	requestIDs := map[string]string{first.header.Get("X-Request-Id"): "", second.header.Get("X-Request-Id"): ""}
	got := e.orders.receivedOf("refunded")
	if len(got) != 2 {
		t.Fatalf("notices received: %d", len(got))
	}
	for _, n := range got {
		refundID, _ := n.body["refundId"].(string)
		if n.orderID != order || fmt.Sprint(n.body) != want[refundID] {
			t.Fatalf("notice for %s: %v\nwant %v", n.orderID, n.body, want[refundID])
		}
		_, knownRequest := requestIDs[n.header.Get("X-Request-Id")]
		// The fake records only notices sent with the payment service's token; the admin's
		// token behind the refund must not travel with them.
		if strings.Contains(n.header.Get("Authorization"), e.tokens[admin]) || n.header.Get("Idempotency-Key") != "refund-"+refundID || !knownRequest {
			t.Fatalf("notice headers: %v", n.header)
		}
	}
	e.clock.Advance(time.Hour)
	if n := e.relay.Flush(ctx); n != 0 || len(e.orders.received()) != 3 {
		t.Fatal("a delivered notice was sent again")
	}
	if pending, _ := e.store.PendingNotices(ctx); pending != 0 {
		t.Fatalf("pending after delivery: %d", pending)
	}
}

// TestRefundNoticeConflictCountsAsDelivered: 409 is the order service saying "already
// refunded": retrying would never change its mind.
func TestRefundNoticeConflictCountsAsDelivered(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	e.relay.Flush(t.Context()) // the approval's paid notice
	e.orders.set(func(f *fakeOrders) { f.answers = []int{http.StatusConflict} })
	if r := e.refund(id, nil, "r-1"); r.status != 201 {
		t.Fatal(r.status)
	}
	if n := e.relay.Flush(t.Context()); n != 1 {
		t.Fatalf("a 409 was not taken as an acknowledgement")
	}
	if pending, _ := e.store.PendingNotices(t.Context()); pending != 0 {
		t.Fatalf("pending %d after a 409", pending)
	}
}

// TestNoticesAreDeliveredAfterARestart: nothing a notice needs lives in memory. A relay
// started afresh on the same database (a restart) delivers what the last one could not,
// long after the refunding admin's token expired, with the service's own token.
func TestNoticesAreDeliveredAfterARestart(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	e.orders.set(func(f *fakeOrders) { f.fail = http.StatusServiceUnavailable })
	if r := e.refund(id, nil, "r-1"); r.status != 201 {
		t.Fatal(r.status)
	}
	if n := e.relay.Flush(t.Context()); n != 0 {
		t.Fatalf("delivered %d to a service that is down", n)
	}
	e.orders.set(func(f *fakeOrders) { f.fail = 0 })
	restarted := outbox.New(e.store, e.orders.sender(t), outbox.Options{Logger: quiet, Now: e.clock.Now})
	e.clock.Advance(time.Hour) // the admin's token is long gone, and the backoff over
	if n := restarted.Flush(t.Context()); n != 2 {
		t.Fatalf("the restarted relay delivered %d of 2 notices", n)
	}
	if len(e.orders.receivedOf("paid")) != 1 || len(e.orders.receivedOf("refunded")) != 1 {
		t.Fatalf("received %+v", e.orders.received())
	}
	if pending, _ := e.store.PendingNotices(t.Context()); pending != 0 {
		t.Fatalf("pending %d after the restart's delivery", pending)
	}
}

// TestRelayDeliversAsSoonAsTheRefundCommits: with the relay running, a refund is reported
// at once, without waiting for the poll.
func TestRelayDeliversAsSoonAsTheRefundCommits(t *testing.T) {
	e := newTestEnv(t)
	id, _ := e.paid(2599)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	relay := e.relay
	go func() { relay.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if r := e.refund(id, nil, "r-1"); r.status != 201 {
		t.Fatal(r.status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.orders.receivedOf("refunded")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the notice was not delivered within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuditLogRecordsEachRefund(t *testing.T) {
	e := newTestEnv(t)
	id, order := e.paid(2599)
	r := e.call(req{method: "POST", path: "/api/payments/" + id + "/refunds", as: admin, key: "r-1",
		body: map[string]any{"amount": 700}, header: map[string]string{"X-Request-Id": "console-42"}})
	if r.status != 201 {
		t.Fatal(r.status)
	}
	e.refund(id, map[string]any{"amount": 99999}, "r-2") // refused: not audited
	got := e.call(req{method: "GET", path: "/api/payments/admin/audit", as: admin})
	if got.status != 200 {
		t.Fatal(got.status)
	}
	entries := got.list(t)
	if len(entries) != 1 {
		t.Fatalf("audit entries: %s", got.body)
	}
	a := entries[0]
	detail := a["detail"].(map[string]any)
	if a["action"] != payment.AuditRefund || a["resource"] != "payment/"+id || a["requestId"] != "console-42" ||
		a["actor"].(map[string]any)["subject"] != adaSub || a["actor"].(map[string]any)["username"] != "ada" ||
		detail["amount"] != 700.0 || detail["orderId"] != order || detail["refundId"] != r.json(t)["id"] {
		t.Fatalf("audit entry: %v", a)
	}
	at, err := time.Parse(time.RFC3339Nano, a["at"].(string))
	if err != nil || time.Since(at) > time.Minute {
		t.Fatalf("audit time %v %v", a["at"], err)
	}
}
