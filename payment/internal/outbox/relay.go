// Package outbox delivers the notices the payment service owes the order service: that a
// charge was approved (paid) and that a payment was refunded (refunded).
//
// A notice is committed in the same transaction as what it reports (the transactional
// outbox), so it exists exactly when the approval or refund does. The Relay then sends it,
// at once when the service tells it to and on a timer after that, backing off between
// failures, until the order service acknowledges it. Delivery is at least once: the order
// service recognises a notice it has already applied (by payment id and refunded total).
//
// The relay authenticates as the payment service itself (its client-credentials token over
// mutual TLS, see the Sender), never with the token of the user whose request wrote the
// notice: a notice therefore survives that token's expiry and the service's restarts.
package outbox

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"example.com/shop/payment/internal/payment"
)

// Store is the outbox's view of the database.
type Store interface {
	DueNotices(ctx context.Context, now time.Time, limit int) ([]payment.Notice, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	MarkFailed(ctx context.Context, id string, attempts int, next time.Time, reason string) error
}

// Sender delivers one notice to the order service. It returns nil once the order service
// has acknowledged the notice, so the relay never sends it again.
type Sender interface {
	Send(ctx context.Context, n payment.Notice) error
}

// Options tune a Relay; zero values take the defaults.
type Options struct {
	// Poll is how often due notices are looked for without a wake-up; 2s by default.
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed attempt, which doubles with
	// each failure; 1s and 5m by default.
	MinBackoff, MaxBackoff time.Duration
	// Batch is how many notices one pass sends at most; 20 by default.
	Batch  int
	Logger *slog.Logger
	Now    func() time.Time
}

// Relay sends due notices until they are acknowledged. It implements payment.Notifier.
type Relay struct {
	store  Store
	sender Sender
	o      Options
	wake   chan struct{}
}

var _ payment.Notifier = (*Relay)(nil)

// New returns a Relay; call Run to start it.
func New(store Store, sender Sender, o Options) *Relay {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.Batch <= 0 {
		o.Batch = 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Relay{store: store, sender: sender, o: o, wake: make(chan struct{}, 1)}
}

// Notify implements payment.Notifier: it wakes the relay so a notice just committed goes
// out now rather than at the next poll.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending; it will see this notice too
	}
}

// Run delivers notices until ctx is done.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Poll)
	defer t.Stop()
	for {
		r.Flush(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// Flush makes one delivery attempt for every notice that is due, and reports how many were
// delivered.
func (r *Relay) Flush(ctx context.Context) int {
	due, err := r.store.DueNotices(ctx, r.o.Now(), r.o.Batch)
	if err != nil {
		if ctx.Err() == nil {
			r.o.Logger.Error("outbox: reading due notices", "err", err)
		}
		return 0
	}
	delivered := 0
	for _, n := range due {
		if ctx.Err() != nil {
			break
		}
		if r.deliver(ctx, n) {
			delivered++
		}
	}
	return delivered
}

func (r *Relay) deliver(ctx context.Context, n payment.Notice) bool {
	err := r.sender.Send(ctx, n)
	now := r.o.Now()
	if err == nil {
		if err := r.store.MarkDelivered(ctx, n.ID, now); err != nil {
			// Sent but not marked: it goes again, which the order service tolerates.
			r.o.Logger.Error("outbox: marking a notice delivered", "notice_id", n.ID, "err", err)
			return false
		}
		r.o.Logger.Info("outbox: notice delivered", "notice_id", n.ID, "kind", n.Kind, "order_id", n.OrderID,
			"payment_id", n.PaymentID, "refund_id", n.RefundID, "attempts", n.Attempts+1)
		return true
	}
	attempts := n.Attempts + 1
	next := now.Add(r.backoff(attempts))
	r.o.Logger.Warn("outbox: notice not delivered; will retry", "notice_id", n.ID, "kind", n.Kind,
		"order_id", n.OrderID, "attempts", attempts, "next_attempt", next, "err", err)
	if err := r.store.MarkFailed(ctx, n.ID, attempts, next, err.Error()); err != nil {
		r.o.Logger.Error("outbox: recording a failed attempt", "notice_id", n.ID, "err", err)
	}
	return false
}

// backoff doubles from MinBackoff up to MaxBackoff, with jitter so that many notices that
// failed together do not all retry in the same instant.
func (r *Relay) backoff(attempts int) time.Duration {
	d := r.o.MinBackoff
	for i := 1; i < attempts && d < r.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.o.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}
