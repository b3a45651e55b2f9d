package expiry_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/shop/order/internal/expiry"
	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/testkit"
)

// towel is a product of the seed catalog (60 in stock).
const towel = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02"

func open(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "order.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func place(t *testing.T, s *store.Store, user string, quantity int) order.Order {
	t.Helper()
	o, _, err := s.CreateOrder(t.Context(), store.NewOrder{UserID: user, Customer: user,
		Lines: []order.Line{{ProductID: towel, Quantity: quantity}}, PaymentHold: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func stock(t *testing.T, s *store.Store) int {
	t.Helper()
	p, err := s.Product(t.Context(), towel)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

// TestOncePassesOverEveryOverdueOrder: a pass expires every overdue order, batch after
// batch, audits each in the service's name, and leaves orders not yet due alone.
func TestOncePassesOverEveryOverdueOrder(t *testing.T) {
	s := open(t)
	before := stock(t, s)
	for range 5 {
		place(t, s, "alice", 2)
	}
	logs := &testkit.Logs{}
	now := time.Now()
	e := expiry.New(s, expiry.Options{Batch: 2, Actor: "order-service", Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Now: func() time.Time { return now }})
	if n, err := e.Once(t.Context()); err != nil || n != 0 {
		t.Fatalf("before the deadline: %d expired, %v", n, err)
	}
	now = now.Add(2 * time.Hour)
	if n, err := e.Once(t.Context()); err != nil || n != 5 {
		t.Fatalf("after the deadline: %d expired, %v; want all 5 in three batches", n, err)
	}
	if got := stock(t, s); got != before {
		t.Fatalf("stock %d, want %d back", got, before)
	}
	list, err := s.OrdersOf(t.Context(), "alice", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list {
		if !o.Expired() {
			t.Fatalf("order %s is %s (%s), want expired", o.ID, o.Status, o.CancelReason)
		}
	}
	audit, err := s.AuditLog(t.Context(), store.AuditFilter{Action: order.ActionOrderExpire}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 5 || audit[0].ActorUsername != "order-service" || audit[0].Details["customer"] != "alice" {
		t.Fatalf("audit log %+v", audit)
	}
	if got := strings.Count(logs.String(), "not paid in time"); got != 5 {
		t.Fatalf("%d log lines for 5 expiries:\n%s", got, logs)
	}
}

// TestRunStopsWithItsContext: Run expires at start and returns when its context ends.
func TestRunStopsWithItsContext(t *testing.T) {
	s := open(t)
	o := place(t, s, "alice", 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	e := expiry.New(s, expiry.Options{Interval: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	go func() { e.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.Order(t.Context(), o.ID)
		if err == nil && got.Expired() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first pass did not expire the order: %+v %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
