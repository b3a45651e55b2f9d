// Package reconcile settles the orders whose checkout never learned how its charge ended.
//
// A checkout sends the charge and marks the order paid when the payment service approves.
// Between the two, the answer can be lost: the payment service was slow and the checkout
// gave up (504), or this service stopped mid-request. The order then stays pending with a
// charge attempt in flight, and the shopper cannot tell whether they paid. The payment
// service's paid notice usually settles such an order first; reconciliation is the
// backstop that needs nothing from the payment service's side to have gone right, and the
// only one that frees an attempt which charged nothing.
//
// After a grace period longer than any checkout waits, the Reconciler asks the payment
// service (its internal listener, as the order service itself) for the order's payments
// and settles the order exactly once:
//
//   - a payment that charged the order (approved, refunded since or not): the order
//     becomes paid by it, a compare-and-set from pending, audited once;
//   - a payment still processing: nothing yet, it is asked again next time;
//   - declined, failed or no payment at all: the attempt is closed, so the shopper's
//     next checkout goes out under a new Idempotency-Key.
//
// Every write is a compare-and-set in the database, so reconciliations running at the same
// time (two replicas, or a loop and a test) and a checkout finishing late agree: an order is
// never paid twice nor by two payments, and an attempt is closed once.
package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/store"
)

// Payments reads the payments of an order from the payment service (payment.Lookup).
type Payments interface {
	PaymentsOf(ctx context.Context, orderID string) ([]payment.Payment, error)
}

// Options tune a Reconciler; zero values take the defaults.
type Options struct {
	// Grace is how long after a charge attempt went out its order is left to the checkout;
	// 2m by default. It must outlast the checkout's wait for the payment service.
	Grace time.Duration
	// Interval is how often Run reconciles; 1m by default.
	Interval time.Duration
	// Batch is how many orders one pass settles at most; 50 by default.
	Batch int
	// Actor is the subject named in the audit log for a settlement; "order-service" by
	// default (the service's own client id).
	Actor  string
	Logger *slog.Logger
	Now    func() time.Time
}

// Reconciler settles orders awaiting a payment outcome.
type Reconciler struct {
	store    *store.Store
	payments Payments
	o        Options
}

// New returns a Reconciler; call Run to start it, or Once for a single pass.
func New(s *store.Store, payments Payments, o Options) *Reconciler {
	if o.Grace <= 0 {
		o.Grace = 2 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Actor == "" {
		o.Actor = "order-service"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reconciler{store: s, payments: payments, o: o}
}

// Report counts what one pass did.
type Report struct {
	// Checked orders awaited an outcome past the grace period.
	Checked int
	// Paid orders were settled as paid by this pass.
	Paid int
	// Closed attempts charged nothing and were closed by this pass.
	Closed int
	// Waiting orders have a payment still processing, or were settled by someone else
	// (the checkout, a notice, another reconciliation) while this pass looked.
	Waiting int
	// Failed orders could not be settled: the payment service did not answer (tried again
	// next pass), or the outcome needs a person (logged as an error): an approval of
	// another amount than the order's total, or of an order cancelled meanwhile.
	Failed int
}

// outcome is what settling one order came to.
type outcome int

const (
	waiting outcome = iota
	paid
	closed
	failed
)

// Run reconciles at once, then every Interval, until ctx is done. The first pass at start
// settles what a crash of this service left behind without waiting a whole interval.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		rep, err := r.Once(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.o.Logger.Error("reconcile: listing the orders awaiting a payment outcome", "err", err)
		case rep.Checked > 0:
			r.o.Logger.Info("reconcile: pass done", "checked", rep.Checked, "paid", rep.Paid, "closed", rep.Closed,
				"waiting", rep.Waiting, "failed", rep.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once makes one pass over the orders whose charge attempt went out more than Grace ago.
// It returns an error only when it could not list them; an order it could not settle is
// counted in Report.Failed and logged.
func (r *Reconciler) Once(ctx context.Context) (Report, error) {
	cutoff := r.o.Now().Add(-r.o.Grace)
	awaiting, err := r.store.AwaitingPayment(ctx, cutoff, r.o.Batch)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, o := range awaiting {
		if ctx.Err() != nil {
			break
		}
		rep.Checked++
		out, err := r.settle(ctx, o, cutoff)
		if err != nil {
			r.o.Logger.Warn("reconcile: order not settled; will try again", "order_id", o.ID, "err", err)
			out = failed
		}
		switch out {
		case paid:
			rep.Paid++
		case closed:
			rep.Closed++
		case waiting:
			rep.Waiting++
		case failed:
			rep.Failed++
		}
	}
	return rep, nil
}

// settle decides one order from its payments and applies the decision.
func (r *Reconciler) settle(ctx context.Context, o order.Order, cutoff time.Time) (outcome, error) {
	ps, err := r.payments.PaymentsOf(ctx, o.ID)
	if err != nil {
		return failed, err
	}
	var processing bool
	for _, p := range ps {
		if payment.Paid(p.Status) {
			return r.settlePaid(ctx, o, p)
		}
		processing = processing || p.Status == payment.StatusProcessing
	}
	if processing {
		return waiting, nil
	}
	done, err := r.store.CloseStalledAttempt(ctx, o.ID, o.PaymentAttempts, cutoff)
	if err != nil || !done {
		return waiting, err
	}
	r.o.Logger.Info("reconcile: payment attempt charged nothing; closed so the shopper can pay again",
		"order_id", o.ID, "attempt", o.PaymentAttempts, "payments", len(ps))
	return closed, nil
}

// settlePaid marks o paid by p, which charged it.
func (r *Reconciler) settlePaid(ctx context.Context, o order.Order, p payment.Payment) (outcome, error) {
	if err := o.CheckPaidAmount(order.Money(p.Amount)); err != nil {
		r.o.Logger.Error("reconcile: payment approved for another amount than the order's total; not marking it paid",
			"order_id", o.ID, "payment_id", p.ID, "charged", p.Amount.Amount, "total", o.Total.Amount)
		return failed, nil
	}
	entry := order.AuditEntry{
		ActorSubject: r.o.Actor, ActorUsername: r.o.Actor, Action: order.ActionOrderPaymentSettled, TargetID: o.ID,
		Details: map[string]any{"number": o.Number, "paymentId": p.ID, "by": "reconciliation",
			"amount": map[string]any{"amount": p.Amount.Amount, "currency": p.Amount.Currency}},
	}
	_, changed, err := r.store.SettlePaid(ctx, o.ID, p.ID, entry)
	switch {
	case errors.Is(err, order.ErrInvalidTransition) || errors.Is(err, order.ErrNotFound):
		// Cancelled or deleted since it was listed: the approval has nothing left to pay,
		// and its money must go back.
		r.o.Logger.Error("reconcile: payment approved for an order that is no longer payable; it must be refunded",
			"order_id", o.ID, "payment_id", p.ID, "err", err)
		return failed, nil
	case err != nil:
		return failed, err
	case !changed:
		return waiting, nil // the checkout, a notice or another pass recorded it first
	}
	r.o.Logger.Warn("reconcile: order paid by an approval its checkout never recorded", "order_id", o.ID, "payment_id", p.ID)
	return paid, nil
}
