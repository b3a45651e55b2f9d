// Package outbox delivers the refund notices the payment service owes the order service.
//
// A notice is committed in the same transaction as its refund (the transactional outbox), so
// it exists exactly when the refund does. The Relay then sends it, at once when the refund
// tells it to and on a timer after that, backing off between failures, until the order
// service acknowledges it. Delivery is at least once: the order service recognises a notice
// it has applied by its refund id.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"example.com/shop/payment/internal/payment"
)

// Store is the outbox's view of the database.
type Store interface {
	DueNotices(ctx context.Context, now time.Time, limit int) ([]payment.Notice, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	MarkFailed(ctx context.Context, id string, attempts int, next time.Time, reason string) error
}

// Sender delivers one notice to the order service. cred is the token of the admin behind the
// refund while the relay still holds it, and the zero Credential after that (it expired, or
// the service restarted). Today's sender propagates that token and answers
// payment.ErrNoCredential without it; the sender of issue 6 authenticates as the service
// itself (client credentials over mTLS) and ignores cred.
type Sender interface {
	Send(ctx context.Context, n payment.Notice, cred payment.Credential) error
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

	mu    sync.Mutex
	creds map[string]payment.Credential // by notice id; in memory only, never in the database
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
	return &Relay{store: store, sender: sender, o: o, wake: make(chan struct{}, 1), creds: map[string]payment.Credential{}}
}

// Notify implements payment.Notifier: it keeps cred for the notice, in memory only (an
// access token is a credential; it is not written to the database even for the few minutes
// it lives) and wakes the relay so the notice goes out now rather than at the next poll.
func (r *Relay) Notify(noticeID string, cred payment.Credential) {
	if cred.Token != "" {
		r.mu.Lock()
		r.creds[noticeID] = cred
		r.mu.Unlock()
	}
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
	r.forgetExpired()
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
	r.mu.Lock()
	cred := r.creds[n.ID]
	r.mu.Unlock()
	err := r.sender.Send(ctx, n, cred)
	now := r.o.Now()
	if err == nil {
		if err := r.store.MarkDelivered(ctx, n.ID, now); err != nil {
			// Sent but not marked: it goes again, which the order service tolerates.
			r.o.Logger.Error("outbox: marking a notice delivered", "notice_id", n.ID, "err", err)
			return false
		}
		r.mu.Lock()
		delete(r.creds, n.ID)
		r.mu.Unlock()
		r.o.Logger.Info("outbox: refund notice delivered", "notice_id", n.ID, "refund_id", n.RefundID,
			"order_id", n.OrderID, "attempts", n.Attempts+1)
		return true
	}
	attempts := n.Attempts + 1
	next := now.Add(r.backoff(attempts))
	level := slog.LevelWarn
	if errors.Is(err, payment.ErrNoCredential) {
		// Nothing to do until a credential exists (issue 6 brings the service's own).
		level = slog.LevelError
	}
	r.o.Logger.Log(ctx, level, "outbox: refund notice not delivered; will retry", "notice_id", n.ID,
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

// forgetExpired drops tokens that can no longer be used, so the map does not grow with
// notices that were never delivered.
func (r *Relay) forgetExpired() {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.creds {
		if !c.Usable(now) {
			delete(r.creds, id)
		}
	}
}
