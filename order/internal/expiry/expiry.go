// Package expiry cancels the orders their shoppers did not pay in time and puts their
// stock back on the shelf.
//
// Placing an order takes its stock at once, so that two shoppers never buy the same last
// item. Without a deadline, an order nobody pays would hold that stock for ever, and one
// shopper could empty the shop without paying (OWASP API6:2023). Every order gets a
// payment deadline when it is placed (order.Rules.PaymentHold); the Expirer finds pending
// orders past it with no charge attempt in flight and cancels them as expired, audited.
//
// Nothing is kept in memory: each expiry is a compare-and-set in the database
// (store.ExpireOverdue), so every replica may run an Expirer, and an expiry racing a
// checkout that starts a charge, a cancel or another replica happens once or not at all.
// An order whose charge is in flight is not expired: its outcome decides it (the checkout,
// the payment service's notice or reconciliation, which closes an attempt that charged
// nothing, after which the order expires on the next pass).
package expiry

import (
	"context"
	"log/slog"
	"time"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
)

// Options tune an Expirer; zero values take the defaults.
type Options struct {
	// Interval is how often Run looks for overdue orders; 30s by default. An order
	// expires at most this long after its deadline (it cannot be paid from the deadline
	// on either way).
	Interval time.Duration
	// Batch is how many orders one transaction-per-order round expires at most before the
	// next round; 100 by default.
	Batch int
	// Actor is the subject and username of the audit entries; "order-service" by default
	// (the service's own client id).
	Actor  string
	Logger *slog.Logger
	Now    func() time.Time
}

// Expirer expires overdue orders.
type Expirer struct {
	store *store.Store
	o     Options
}

// New returns an Expirer; call Run to start it, or Once for a single pass.
func New(s *store.Store, o Options) *Expirer {
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 100
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
	return &Expirer{store: s, o: o}
}

// Run expires at once, then every Interval, until ctx is done. The first pass at start
// catches up on the deadlines that passed while no replica was running.
func (e *Expirer) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		if _, err := e.Once(ctx); err != nil && ctx.Err() == nil {
			e.o.Logger.Error("expiry: expiring overdue orders; will try again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxRounds bounds one pass, so a pass ends even if orders fall due as fast as it
// expires them; the next pass continues.
const maxRounds = 100

// Once expires every order overdue now, Batch at a time, and returns how many it expired.
func (e *Expirer) Once(ctx context.Context) (int, error) {
	now := e.o.Now()
	total := 0
	for range maxRounds {
		expired, err := e.store.ExpireOverdue(ctx, now, e.o.Batch, e.entry)
		total += len(expired)
		for _, o := range expired {
			e.o.Logger.Info("expiry: order not paid in time; cancelled, stock released",
				"order_id", o.ID, "customer", o.Customer, "due", o.PaymentDueAt)
		}
		if err != nil || len(expired) < e.o.Batch {
			return total, err
		}
	}
	return total, nil
}

// entry is the audit log's record of an expiry: the service acted, on the clock.
func (e *Expirer) entry(o order.Order) order.AuditEntry {
	return order.AuditEntry{
		ActorSubject: e.o.Actor, ActorUsername: e.o.Actor, Action: order.ActionOrderExpire, TargetID: o.ID,
		Details: map[string]any{
			"customer": o.Customer, "ownerSubject": o.UserID, "paymentDueAt": o.PaymentDueAt,
			"total": map[string]any{"amount": o.Total.Amount, "currency": o.Total.Currency},
		},
	}
}
