package store_test

import (
	"errors"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
)

// held places an order for user under a payment hold and, when max > 0, a cap on unpaid
// orders.
func held(s *store.Store, user string, hold time.Duration, max int, lines ...order.Line) (order.Order, error) {
	o, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: user, Customer: user, Lines: lines, PaymentHold: hold, MaxUnpaid: max})
	return o, err
}

// expiredBy is the audit entry the expiry job writes, reduced to what the tests look for.
func expiredBy(o order.Order) order.AuditEntry {
	return order.AuditEntry{ActorSubject: "order-service", ActorUsername: "order-service", Action: order.ActionOrderExpire, TargetID: o.ID}
}

// TestUnpaidOrdersAreCapped: a shopper at the cap is refused another order, and nothing
// is taken from stock; paid, cancelled and overdue orders do not count, other shoppers are
// not affected, and a retry of an order already placed is still answered.
func TestUnpaidOrdersAreCapped(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 100, 500)
		line := order.Line{ProductID: p.ID, Quantity: 1}
		first := must(held(s, "alice", time.Hour, 2, line))
		keyed, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: "alice", Customer: "alice", Lines: []order.Line{line},
			PaymentHold: time.Hour, MaxUnpaid: 2, IdempotencyKey: "k-1"})
		if err != nil {
			t.Fatal(err)
		}
		before := product(t, s, p.ID).Stock
		if _, err := held(s, "alice", time.Hour, 2, line); !errors.Is(err, order.ErrTooManyUnpaid) {
			t.Fatalf("a third unpaid order: %v, want ErrTooManyUnpaid", err)
		}
		if got := product(t, s, p.ID).Stock; got != before {
			t.Fatalf("the refused order took stock: %d, was %d", got, before)
		}
		again, replayed, err := s.CreateOrder(ctx, store.NewOrder{UserID: "alice", Customer: "alice", Lines: []order.Line{line},
			PaymentHold: time.Hour, MaxUnpaid: 2, IdempotencyKey: "k-1"})
		if err != nil || !replayed || again.ID != keyed.ID {
			t.Fatalf("a retry at the cap: %v (replayed %v)", err, replayed)
		}
		if _, err := held(s, "bob", time.Hour, 2, line); err != nil {
			t.Fatalf("another shopper: %v", err)
		}

		if _, _, err := s.MarkPaid(ctx, first.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		third := must(held(s, "alice", time.Hour, 2, line)) // a paid order frees its place
		if _, err := s.CancelOrder(ctx, third.ID); err != nil {
			t.Fatal(err)
		}
		overdue := must(held(s, "alice", time.Millisecond, 2, line)) // so does a cancelled one
		time.Sleep(5 * time.Millisecond)
		if _, err := held(s, "alice", time.Hour, 2, line); err != nil {
			t.Fatalf("with one order overdue, about to expire: %v", err)
		}
		if got := stored(t, s, overdue.ID); got.Status != order.StatusPending {
			t.Fatalf("the overdue order is %s before the expiry job ran", got.Status)
		}
	})
}

// TestConcurrentCreatesRespectTheCap: a shopper fires many orders at once; exactly the cap
// of them are placed, and only their stock is taken.
func TestConcurrentCreatesRespectTheCap(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 100, 500)
		const n, max = 8, 3
		errs := race(n, func(int) error {
			_, err := held(s, "mallory", time.Hour, max, order.Line{ProductID: p.ID, Quantity: 2})
			return err
		})
		placed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				placed++
			case !errors.Is(err, order.ErrTooManyUnpaid):
				t.Fatalf("a create failed otherwise: %v", err)
			}
		}
		if placed != max {
			t.Fatalf("%d orders placed at once, want the cap of %d", placed, max)
		}
		if got := product(t, s, p.ID).Stock; got != 100-2*max {
			t.Fatalf("stock %d, want %d", got, 100-2*max)
		}
		assertOrders(t, s, "mallory", max)
	})
}

// TestExpiry: an order not paid within its hold is cancelled as expired, once, with its
// stock back on the shelf and an audit entry; orders paid, cancelled, without a deadline
// or with a charge in flight are left alone.
func TestExpiry(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 50, 500)
		line := func(q int) order.Line { return order.Line{ProductID: p.ID, Quantity: q} }
		unpaid := must(held(s, "alice", time.Hour, 0, line(3)))
		paid := must(held(s, "alice", time.Hour, 0, line(1)))
		cancelled := must(held(s, "alice", time.Hour, 0, line(1)))
		inFlight := must(held(s, "alice", time.Hour, 0, line(2)))
		noDeadline := must(held(s, "alice", 0, 0, line(1)))
		if _, _, err := s.MarkPaid(ctx, paid.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		must(s.CancelOrder(ctx, cancelled.ID))
		if err := s.StartPaymentAttempt(ctx, inFlight.ID); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, s, unpaid.ID); got.PaymentDueAt.Sub(got.CreatedAt) != time.Hour {
			t.Fatalf("due %v for an order placed %v under a hold of 1h", got.PaymentDueAt, got.CreatedAt)
		}
		if !stored(t, s, noDeadline.ID).PaymentDueAt.IsZero() {
			t.Fatal("an order placed without a hold has a deadline")
		}
		stock := product(t, s, p.ID).Stock

		if got := must(s.ExpireOverdue(ctx, time.Now(), 10, expiredBy)); len(got) != 0 {
			t.Fatalf("expired before the deadline: %+v", got)
		}
		later := time.Now().Add(2 * time.Hour)
		got := must(s.ExpireOverdue(ctx, later, 10, expiredBy))
		if len(got) != 1 || got[0].ID != unpaid.ID || !got[0].Expired() {
			t.Fatalf("expired %+v, want only the unpaid order, expired", got)
		}
		if o := stored(t, s, unpaid.ID); o.Status != order.StatusCancelled || o.CancelReason != order.CancelExpired {
			t.Fatalf("expired order reads %s (%s)", o.Status, o.CancelReason)
		}
		if o := stored(t, s, cancelled.ID); o.CancelReason != order.CancelRequested {
			t.Fatalf("a cancelled order's reason: %q", o.CancelReason)
		}
		if got := product(t, s, p.ID).Stock; got != stock+3 {
			t.Fatalf("stock %d after the expiry, want %d", got, stock+3)
		}
		if got := must(s.ExpireOverdue(ctx, later, 10, expiredBy)); len(got) != 0 {
			t.Fatalf("expired twice: %+v", got)
		}
		if got := product(t, s, p.ID).Stock; got != stock+3 {
			t.Fatalf("stock %d after a second pass, want %d", got, stock+3)
		}
		log := must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{}))
		if len(log) != 1 || log[0].Action != order.ActionOrderExpire || log[0].TargetID != unpaid.ID {
			t.Fatalf("audit log %+v, want one expiry of %s", log, unpaid.ID)
		}
		if err := s.StartPaymentAttempt(ctx, unpaid.ID); !errors.Is(err, order.ErrExpired) {
			t.Fatalf("paying an expired order: %v, want ErrExpired", err)
		}

		// The charge in flight charged nothing, and reconciliation closes the attempt:
		// the order is overdue now, and expires.
		if done, err := s.CloseStalledAttempt(ctx, inFlight.ID, 0, time.Now().Add(time.Second)); err != nil || !done {
			t.Fatalf("closing the attempt: %v %v", done, err)
		}
		if got := must(s.ExpireOverdue(ctx, later, 10, expiredBy)); len(got) != 1 || got[0].ID != inFlight.ID {
			t.Fatalf("after its attempt closed: expired %+v", got)
		}
	})
}

// TestAnOverdueOrderCannotStartAPayment: past its deadline and before the expiry job runs,
// an order may not start a charge; one whose charge is already in flight may send it again.
func TestAnOverdueOrderCannotStartAPayment(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		overdue := must(held(s, "alice", time.Millisecond, 0, order.Line{ProductID: towel, Quantity: 1}))
		// A second is ample for the first attempt to start before the deadline, on a busy
		// machine too.
		started := must(held(s, "alice", time.Second, 0, order.Line{ProductID: towel, Quantity: 1}))
		if err := s.StartPaymentAttempt(ctx, started.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(stored(t, s, started.ID).PaymentDueAt) + 10*time.Millisecond)
		if err := s.StartPaymentAttempt(ctx, overdue.ID); !errors.Is(err, order.ErrExpired) {
			t.Fatalf("starting a payment of an overdue order: %v, want ErrExpired", err)
		}
		if err := s.StartPaymentAttempt(ctx, started.ID); err != nil {
			t.Fatalf("sending an attempt in flight again after the deadline: %v", err)
		}
	})
}

// TestConcurrentExpiriesExpireOnce: replicas sweep at the same moment; every overdue order
// expires once, and its stock comes back once.
func TestConcurrentExpiriesExpireOnce(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 20, 500)
		for range 5 {
			must(held(s, "alice", time.Hour, 0, order.Line{ProductID: p.ID, Quantity: 2}))
		}
		expired := make([][]order.Order, 4)
		errs := race(len(expired), func(i int) error {
			var err error
			expired[i], err = s.ExpireOverdue(ctx, time.Now().Add(2*time.Hour), 10, expiredBy)
			return err
		})
		seen := map[string]int{}
		for i := range expired {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			for _, o := range expired[i] {
				seen[o.ID]++
			}
		}
		if len(seen) != 5 {
			t.Fatalf("%d orders expired, want 5", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("order %s expired %d times", id, n)
			}
		}
		if got := product(t, s, p.ID).Stock; got != 20 {
			t.Fatalf("stock %d, want all 20 back", got)
		}
		if log := must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{})); len(log) != 5 {
			t.Fatalf("%d audit entries, want 5", len(log))
		}
	})
}

// TestExpiryRacesPayment: the expiry job and a checkout reach an order at the same moment.
// Either the order expires, its stock comes back and the checkout is refused before it
// charges anything; or the checkout starts its charge, the order is paid and keeps its
// stock. Never both, never neither.
func TestExpiryRacesPayment(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 100, 500)
		outcomes := map[string]int{}
		for i := range 12 {
			o := must(held(s, "alice", time.Hour, 0, order.Line{ProductID: p.ID, Quantity: 1}))
			stock := product(t, s, p.ID).Stock
			var (
				expired []order.Order
				charged bool
			)
			errs := race(2, func(j int) error {
				if j == 0 {
					var err error
					expired, err = s.ExpireOverdue(ctx, time.Now().Add(2*time.Hour), 10, expiredBy)
					return err
				}
				if err := s.StartPaymentAttempt(ctx, o.ID); err != nil {
					return err
				}
				charged = true // the checkout sends the charge only after this
				_, _, err := s.MarkPaid(ctx, o.ID, "pay-"+o.ID)
				return err
			})
			if errs[0] != nil {
				t.Fatalf("round %d: expiry: %v", i, errs[0])
			}
			got := stored(t, s, o.ID)
			switch {
			case len(expired) == 1:
				if !errors.Is(errs[1], order.ErrExpired) || charged || !got.Expired() || product(t, s, p.ID).Stock != stock+1 {
					t.Fatalf("round %d: expired, yet checkout %v, charged %v, order %s/%s, stock %d (was %d)",
						i, errs[1], charged, got.Status, got.CancelReason, product(t, s, p.ID).Stock, stock)
				}
				outcomes["expired"]++
			case len(expired) == 0:
				if errs[1] != nil || got.Status != order.StatusPaid || product(t, s, p.ID).Stock != stock {
					t.Fatalf("round %d: not expired, yet checkout %v, order %s, stock %d (was %d)",
						i, errs[1], got.Status, product(t, s, p.ID).Stock, stock)
				}
				outcomes["paid"]++
			default:
				t.Fatalf("round %d: expired %+v", i, expired)
			}
		}
		t.Logf("outcomes: %v", outcomes)
		if log := must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{})); len(log) != outcomes["expired"] {
			t.Fatalf("%d audit entries for %d expiries", len(log), outcomes["expired"])
		}
	})
}
