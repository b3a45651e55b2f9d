package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/reconcile"
	"example.com/shop/order/internal/store"
)

const towel = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02" // seed catalog, 12.90 EUR

// fakePayments answers PaymentsOf from a table. With a barrier of n, the calls for each
// order wait until n of them are in flight, so n concurrent reconciliations all read an
// order's state before any of them writes.
type fakePayments struct {
	mu       sync.Mutex
	payments map[string][]payment.Payment
	err      error
	calls    int
	barrier  int
	waiting  map[string]*sync.WaitGroup
	// before runs inside PaymentsOf, to change the order while a pass looks at it.
	before func(orderID string)
}

func (f *fakePayments) PaymentsOf(_ context.Context, orderID string) ([]payment.Payment, error) {
	f.mu.Lock()
	f.calls++
	var wait *sync.WaitGroup
	if f.barrier > 0 {
		if f.waiting[orderID] == nil {
			f.waiting[orderID] = &sync.WaitGroup{}
			f.waiting[orderID].Add(f.barrier)
		}
		wait = f.waiting[orderID]
	}
	ps, err, before := f.payments[orderID], f.err, f.before
	f.mu.Unlock()
	if wait != nil {
		wait.Done()
		wait.Wait()
	}
	if before != nil {
		before(orderID)
	}
	return ps, err
}

type fixture struct {
	t        *testing.T
	store    *store.Store
	payments *fakePayments
	logs     *bytes.Buffer
	logMu    *sync.Mutex
	// cutoff is where the reconciler's grace period ends: attempts started before it
	// are due. An hour ahead by default, so every attempt a test starts is.
	cutoff time.Time
}

func newFixture(t *testing.T) *fixture {
	s, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "order.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{t: t, store: s, payments: &fakePayments{payments: map[string][]payment.Payment{}},
		logs: &bytes.Buffer{}, logMu: &sync.Mutex{}, cutoff: time.Now().Add(time.Hour)}
}

// reconciler returns a Reconciler whose grace period ends at f.cutoff.
func (f *fixture) reconciler() *reconcile.Reconciler {
	return reconcile.New(f.store, f.payments, reconcile.Options{
		Grace: time.Minute, Logger: slog.New(slog.NewTextHandler(lockedWriter{f.logMu, f.logs}, nil)),
		Now: func() time.Time { return f.cutoff.Add(time.Minute) },
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) log() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.String()
}

// lost creates an order whose charge went out and whose outcome the checkout never
// recorded; the payment service knows the given payments of it.
func (f *fixture) lost(statuses ...string) order.Order {
	f.t.Helper()
	ctx := context.Background()
	o, _, err := f.store.CreateOrder(ctx, store.NewOrder{UserID: "alice-sub", Customer: "alice",
		Lines: []order.Line{{ProductID: towel, Quantity: 2}}})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.StartPaymentAttempt(ctx, o.ID); err != nil {
		f.t.Fatal(err)
	}
	var ps []payment.Payment
	for _, st := range statuses {
		ps = append(ps, payment.Payment{ID: uuid.NewString(), OrderID: o.ID, Status: st,
			Amount: payment.Money{Amount: o.Total.Amount, Currency: o.Total.Currency}})
	}
	f.payments.mu.Lock()
	f.payments.payments[o.ID] = ps
	f.payments.mu.Unlock()
	return o
}

func (f *fixture) order(id string) order.Order {
	f.t.Helper()
	o, err := f.store.Order(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

// concurrently runs n passes at once, all of them reading each order's payments before
// any of them writes, and returns their reports.
func (f *fixture) concurrently(n int) []reconcile.Report {
	f.t.Helper()
	f.payments.mu.Lock()
	f.payments.barrier, f.payments.waiting = n, map[string]*sync.WaitGroup{}
	f.payments.mu.Unlock()
	reports := make([]reconcile.Report, n)
	var wg sync.WaitGroup
	for i := range n {
		r := f.reconciler()
		wg.Go(func() {
			rep, err := r.Once(context.Background())
			if err != nil {
				f.t.Error(err)
			}
			reports[i] = rep
		})
	}
	wg.Wait()
	f.payments.mu.Lock()
	f.payments.barrier = 0
	f.payments.mu.Unlock()
	return reports
}

// TestALostApprovalIsPaidExactlyOnce: the checkout's update was lost after the payment
// service approved the charge. Two reconciliations find it at the same time; the order
// becomes paid by that payment once, audited once, and a later pass has nothing to do.
func TestALostApprovalIsPaidExactlyOnce(t *testing.T) {
	f := newFixture(t)
	o := f.lost(payment.StatusDeclined, payment.StatusApproved)
	approved := f.payments.payments[o.ID][1]

	reports := f.concurrently(2)
	if paid := reports[0].Paid + reports[1].Paid; paid != 1 || reports[0].Checked != 1 || reports[1].Checked != 1 {
		t.Fatalf("reports %+v: want the order paid by exactly one pass", reports)
	}
	got := f.order(o.ID)
	if got.Status != order.StatusPaid || got.PaymentID != approved.ID || !got.PaymentStartedAt.IsZero() {
		t.Fatalf("order %+v", got)
	}
	log, err := f.store.AuditLog(context.Background(), store.AuditFilter{}, store.Page{})
	if err != nil || len(log) != 1 || log[0].Action != order.ActionOrderPaymentSettled || log[0].TargetID != o.ID ||
		log[0].Details["paymentId"] != approved.ID || log[0].Details["by"] != "reconciliation" || log[0].ActorSubject != "order-service" {
		t.Fatalf("audit %+v %v: want one settlement", log, err)
	}
	if rep, _ := f.reconciler().Once(context.Background()); rep != (reconcile.Report{}) {
		t.Fatalf("a later pass: %+v", rep)
	}
}

// TestAnAttemptThatChargedNothingIsClosedOnce: declined, failed, or never reached the
// payment service: the attempt is closed once, however many passes race, so the shopper
// pays again under a new key; the order stays pending and unpaid.
func TestAnAttemptThatChargedNothingIsClosedOnce(t *testing.T) {
	f := newFixture(t)
	orders := []order.Order{f.lost(payment.StatusDeclined), f.lost(payment.StatusFailed, payment.StatusDeclined), f.lost()}
	reports := f.concurrently(3)
	closed := 0
	for _, r := range reports {
		closed += r.Closed
		if r.Paid != 0 {
			t.Fatalf("a pass paid an order: %+v", r)
		}
	}
	if closed != len(orders) {
		t.Fatalf("reports %+v: %d closes, want %d", reports, closed, len(orders))
	}
	for _, o := range orders {
		got := f.order(o.ID)
		if got.Status != order.StatusPending || got.PaymentAttempts != 1 || !got.PaymentStartedAt.IsZero() || got.PaymentKey() == o.PaymentKey() {
			t.Fatalf("order %+v", got)
		}
	}
}

// TestWhatIsNotOverIsLeftAlone: a payment still processing, and an attempt younger than
// the grace period, are not settled.
func TestWhatIsNotOverIsLeftAlone(t *testing.T) {
	f := newFixture(t)
	processing := f.lost(payment.StatusProcessing)
	time.Sleep(20 * time.Millisecond)
	f.cutoff = time.Now() // the grace period of attempts started from now on is not over
	time.Sleep(20 * time.Millisecond)
	young := f.lost(payment.StatusApproved)
	rep, err := f.reconciler().Once(context.Background())
	if err != nil || rep != (reconcile.Report{Checked: 1, Waiting: 1}) {
		t.Fatalf("report %+v %v", rep, err)
	}
	if f.payments.calls != 1 {
		t.Fatalf("the payment service was asked %d times: a young attempt was looked at", f.payments.calls)
	}
	for _, o := range []order.Order{processing, young} {
		if got := f.order(o.ID); got.Status != order.StatusPending || got.PaymentAttempts != 0 || got.PaymentStartedAt.IsZero() {
			t.Fatalf("order %+v changed", got)
		}
	}
}

// TestWhatNeedsAPersonIsNotSettled: an approval of another amount than the order's total,
// or of an order cancelled while the pass looked, is never recorded as paying it; it is
// logged for a person (a refund, an investigation).
func TestWhatNeedsAPersonIsNotSettled(t *testing.T) {
	f := newFixture(t)
	wrong := f.lost(payment.StatusApproved)
	f.payments.payments[wrong.ID][0].Amount.Amount--
	cancelled := f.lost(payment.StatusApproved)
	f.payments.before = func(id string) {
		if id == cancelled.ID {
			if _, err := f.store.CancelOrder(context.Background(), id); err != nil {
				t.Error(err)
			}
		}
	}
	rep, err := f.reconciler().Once(context.Background())
	if err != nil || rep != (reconcile.Report{Checked: 2, Failed: 2}) {
		t.Fatalf("report %+v %v", rep, err)
	}
	if got := f.order(wrong.ID); got.Status != order.StatusPending || got.PaymentID != "" {
		t.Fatalf("an approval of another amount paid the order: %+v", got)
	}
	if got := f.order(cancelled.ID); got.Status != order.StatusCancelled {
		t.Fatalf("the cancelled order: %+v", got)
	}
	logs := f.log()
	if !strings.Contains(logs, "another amount") || !strings.Contains(logs, "must be refunded") ||
		!strings.Contains(logs, f.payments.payments[cancelled.ID][0].ID) {
		t.Fatalf("logs:\n%s", logs)
	}
}

// TestAnUnreachablePaymentServiceChangesNothing: without an answer nothing is decided;
// the order is looked at again on the next pass.
func TestAnUnreachablePaymentServiceChangesNothing(t *testing.T) {
	f := newFixture(t)
	o := f.lost(payment.StatusApproved)
	f.payments.err = errors.Join(payment.ErrUnavailable, errors.New("connection refused"))
	rep, err := f.reconciler().Once(context.Background())
	if err != nil || rep != (reconcile.Report{Checked: 1, Failed: 1}) {
		t.Fatalf("report %+v %v", rep, err)
	}
	if got := f.order(o.ID); got.Status != order.StatusPending || got.PaymentAttempts != 0 || got.PaymentStartedAt.IsZero() {
		t.Fatalf("order %+v", got)
	}
	f.payments.err = nil
	if rep, _ := f.reconciler().Once(context.Background()); rep.Paid != 1 {
		t.Fatalf("once the payment service answers: %+v", rep)
	}
}

// TestRunSettlesInTheBackground: the loop settles what is due, at start and on every tick,
// and stops with its context.
func TestRunSettlesInTheBackground(t *testing.T) {
	f := newFixture(t)
	first := f.lost(payment.StatusApproved)
	r := reconcile.New(f.store, f.payments, reconcile.Options{Grace: time.Minute, Interval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return f.cutoff.Add(time.Minute) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitPaid := func(id string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for f.order(id).Status != order.StatusPaid {
			if time.Now().After(deadline) {
				t.Fatalf("order %s not settled by the loop", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitPaid(first.ID)
	waitPaid(f.lost(payment.StatusApproved).ID) // lost while the loop was running
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}
