package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver that creates the test schemas

	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/store"

	"example.com/shop/platform/validation"
)

// The contract tests run on every backend: SQLite always, PostgreSQL too when
// SHOP_TEST_POSTGRES_DSN names a database (the end-to-end suite sets it). Each test gets a
// fresh database: a file for SQLite, a schema of its own for PostgreSQL.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type backend struct {
	name string
	// open returns a store on a database of its own; reopen opens it again (a restart).
	open func(t *testing.T) (s *store.Store, reopen func() *store.Store)
}

func backends() []backend {
	bs := []backend{{name: "sqlite", open: openSQLite}}
	if dsn := os.Getenv("SHOP_TEST_POSTGRES_DSN"); dsn != "" {
		bs = append(bs, backend{name: "postgres", open: func(t *testing.T) (*store.Store, func() *store.Store) {
			return openPostgres(t, dsn)
		}})
	}
	return bs
}

// eachBackend runs test on every backend.
func eachBackend(t *testing.T, test func(t *testing.T, s *store.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, _ := b.open(t)
			test(t, s)
		})
	}
}

func openSQLite(t *testing.T) (*store.Store, func() *store.Store) {
	path := filepath.Join(t.TempDir(), "nested", "payment.db")
	open := func() *store.Store {
		s, err := store.Open(t.Context(), store.Options{Driver: store.DriverSQLite, DSN: path, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(), open
}

func openPostgres(t *testing.T, dsn string) (*store.Store, func() *store.Store) {
	schema := "payment_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	scoped := dsn
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		scoped += sep + "search_path=" + schema
	} else {
		scoped += " search_path=" + schema
	}
	open := func() *store.Store {
		s, err := store.Open(t.Context(), store.Options{Driver: store.DriverPostgres, DSN: scoped, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(), open
}

var base = time.Date(2025, 11, 28, 9, 30, 0, 123456000, time.UTC)

func newPayment(order, owner string, amount int64, at time.Time) payment.Payment {
	return payment.Payment{
		ID: uuid.NewString(), OrderID: order, UserID: owner, Amount: payment.Money{Amount: amount, Currency: "EUR"},
		Status: payment.StatusProcessing, CardBrand: payment.BrandVisa, CardLast4: "4242", CreatedAt: at, UpdatedAt: at,
	}
}

func key(subject string) payment.Idempotency {
	return payment.Idempotency{Subject: subject, Key: uuid.NewString(), Fingerprint: strings.Repeat("ab", 32)}
}

// approved stores an approved payment of amount for owner on a new order.
func approved(t *testing.T, s *store.Store, owner string, amount int64) payment.Payment {
	t.Helper()
	p := newPayment(uuid.NewString(), owner, amount, base)
	if err := s.Reserve(t.Context(), p, key(owner)); err != nil {
		t.Fatal(err)
	}
	done, err := s.Finish(t.Context(), p.ID, payment.StatusApproved, "", base.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// planOf returns a refund plan of amount, with the rules a correct domain applies.
func planOf(amount int64, admin string) func(payment.Payment) (payment.RefundPlan, error) {
	return func(p payment.Payment) (payment.RefundPlan, error) {
		if !p.Status.Refundable() {
			return payment.RefundPlan{}, payment.ErrNotRefundable
		}
		if amount > p.Remaining() {
			return payment.RefundPlan{}, validation.New(validation.FieldError{Field: "amount", Message: "too much"})
		}
		return rawPlan(p, amount, admin), nil
	}
}

// clock gives each planned refund its own later time, so refunds list in planning order.
var clock atomic.Int64

// rawPlan plans a refund of amount without checking anything, like a buggy domain would.
func rawPlan(p payment.Payment, amount int64, admin string) payment.RefundPlan {
	at := base.Add(time.Minute + time.Duration(clock.Add(1))*time.Millisecond)
	r := payment.Refund{
		ID: uuid.NewString(), PaymentID: p.ID, OrderID: p.OrderID, Amount: payment.Money{Amount: amount, Currency: p.Amount.Currency},
		FullyRefunded: amount == p.Remaining(), CreatedAt: at,
		By: payment.Actor{Subject: admin, Username: "ada", Admin: true, RequestID: "req-" + admin},
	}
	return payment.RefundPlan{
		Refund: r,
		Audit: payment.AuditEntry{ID: uuid.NewString(), At: at, ActorSubject: admin, ActorName: "ada",
			Action: payment.AuditRefund, Resource: "payment/" + p.ID, Detail: `{"amount":1}`, RequestID: "req-" + admin},
		Notice: payment.Notice{ID: uuid.NewString(), Kind: payment.NoticeRefunded, OrderID: p.OrderID, PaymentID: p.ID, RefundID: r.ID, Amount: r.Amount,
			RefundedTotal: p.Refunded + amount, FullyRefunded: r.FullyRefunded, RequestID: "req-" + admin, CreatedAt: at},
	}
}

func TestReopeningKeepsDataAndSchema(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, reopen := b.open(t)
			p := approved(t, s, "alice", 1999)
			again := reopen() // migrations already applied: nothing to do, nothing lost
			got, err := again.Payment(t.Context(), p.ID)
			if err != nil || !reflect.DeepEqual(got, p) {
				t.Fatalf("after reopening: %+v, %v; want %+v", got, err, p)
			}
		})
	}
}

func TestReserveFinishAndReadBack(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		p := newPayment(uuid.NewString(), "alice", 1999, base)
		k := key("alice")
		if err := s.Reserve(ctx, p, k); err != nil {
			t.Fatal(err)
		}
		got, fp, err := s.PaymentByKey(ctx, "alice", k.Key)
		if err != nil || fp != k.Fingerprint || !reflect.DeepEqual(got, p) {
			t.Fatalf("by key: %+v %q %v; want %+v", got, fp, err, p)
		}
		if _, _, err := s.PaymentByKey(ctx, "bob", k.Key); !errors.Is(err, payment.ErrNotFound) {
			t.Fatalf("another subject's key: %v, want ErrNotFound", err)
		}
		done, err := s.Finish(ctx, p.ID, payment.StatusDeclined, payment.ReasonInsufficientFunds, base.Add(time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := p
		want.Status, want.Outcome, want.Reason, want.UpdatedAt = payment.StatusDeclined, payment.StatusDeclined, payment.ReasonInsufficientFunds, base.Add(time.Second)
		if !reflect.DeepEqual(done, want) {
			t.Fatalf("finished: %+v\nwant        %+v", done, want)
		}
		if _, err := s.Finish(ctx, p.ID, payment.StatusApproved, "", base, nil); !errors.Is(err, payment.ErrNotProcessing) {
			t.Fatalf("finishing a finished payment again: %v, want ErrNotProcessing", err)
		}
		if _, err := s.Payment(ctx, uuid.NewString()); !errors.Is(err, payment.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}

// TestStuckListsOldProcessingPaymentsOldestFirst: what recovery is handed is the payments
// still processing since before the cut-off, oldest first, at most limit of them.
func TestStuckListsOldProcessingPaymentsOldestFirst(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		reserve := func(at time.Time) payment.Payment {
			p := newPayment(uuid.NewString(), "alice", 100, at)
			if err := s.Reserve(ctx, p, key("alice")); err != nil {
				t.Fatal(err)
			}
			return p
		}
		older, old, recent := reserve(base), reserve(base.Add(time.Minute)), reserve(base.Add(time.Hour))
		finished := reserve(base)
		if _, err := s.Finish(ctx, finished.ID, payment.StatusDeclined, payment.ReasonCardDeclined, base.Add(time.Second), nil); err != nil {
			t.Fatal(err)
		}
		cutoff := base.Add(30 * time.Minute)
		got, err := s.Stuck(ctx, cutoff, 10)
		if err != nil || len(got) != 2 || got[0].ID != older.ID || got[1].ID != old.ID {
			t.Fatalf("stuck before %s: %+v, %v; want %s then %s (not %s, nor the finished one)", cutoff, got, err, older.ID, old.ID, recent.ID)
		}
		if got, err := s.Stuck(ctx, cutoff, 1); err != nil || len(got) != 1 || got[0].ID != older.ID {
			t.Fatalf("limit 1: %+v, %v", got, err)
		}
	})
}

// TestApprovalCommitsItsPaidNotice: the paid notice is written with the approval, in the
// same transaction, and not at all when the payment cannot be finished.
func TestApprovalCommitsItsPaidNotice(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		p := newPayment(uuid.NewString(), "alice", 2599, base)
		if err := s.Reserve(ctx, p, key("alice")); err != nil {
			t.Fatal(err)
		}
		paid := func() *payment.Notice {
			return &payment.Notice{ID: uuid.NewString(), Kind: payment.NoticePaid, OrderID: p.OrderID, PaymentID: p.ID,
				Amount: p.Amount, RequestID: "req-1", CreatedAt: base.Add(time.Second)}
		}
		want := paid()
		if _, err := s.Finish(ctx, p.ID, payment.StatusApproved, "", base.Add(time.Second), want); err != nil {
			t.Fatal(err)
		}
		due, err := s.DueNotices(ctx, base.Add(time.Hour), 10)
		if err != nil || len(due) != 1 || !reflect.DeepEqual(due[0], *want) {
			t.Fatalf("notices: %+v %v\nwant %+v", due, err, *want)
		}
		// Finishing again fails and writes no notice.
		if _, err := s.Finish(ctx, p.ID, payment.StatusApproved, "", base.Add(time.Second), paid()); err == nil {
			t.Fatal("a finished payment was finished again")
		}
		if n, _ := s.PendingNotices(ctx); n != 1 {
			t.Fatalf("pending notices: %d, want 1", n)
		}
	})
}

func TestIdempotencyKeysAreUniquePerSubject(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		k := key("alice")
		if err := s.Reserve(ctx, newPayment(uuid.NewString(), "alice", 100, base), k); err != nil {
			t.Fatal(err)
		}
		if err := s.Reserve(ctx, newPayment(uuid.NewString(), "alice", 100, base), k); !errors.Is(err, payment.ErrDuplicateKey) {
			t.Fatalf("same subject, same key: %v, want ErrDuplicateKey", err)
		}
		bobs := k
		bobs.Subject = "bob"
		if err := s.Reserve(ctx, newPayment(uuid.NewString(), "bob", 100, base), bobs); err != nil {
			t.Fatalf("another subject may use the same key: %v", err)
		}
	})
}

// TestOrderPaymentSlot: exactly the holding statuses keep a second payment of the order out.
func TestOrderPaymentSlot(t *testing.T) {
	cases := []struct {
		first payment.Status
		want  error
	}{
		{payment.StatusProcessing, payment.ErrPaymentInProgress},
		{payment.StatusApproved, payment.ErrOrderPaid},
		{payment.StatusPartiallyRefunded, payment.ErrOrderPaid},
		{payment.StatusRefunded, payment.ErrOrderPaid},
		{payment.StatusDeclined, nil},
		{payment.StatusFailed, nil},
	}
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		for _, tc := range cases {
			order := uuid.NewString()
			first := newPayment(order, "alice", 1000, base)
			if err := s.Reserve(ctx, first, key("alice")); err != nil {
				t.Fatal(err)
			}
			switch tc.first {
			case payment.StatusApproved, payment.StatusPartiallyRefunded, payment.StatusRefunded:
				if _, err := s.Finish(ctx, first.ID, payment.StatusApproved, "", base, nil); err != nil {
					t.Fatal(err)
				}
			case payment.StatusDeclined, payment.StatusFailed:
				if _, err := s.Finish(ctx, first.ID, tc.first, payment.ReasonCardDeclined, base, nil); err != nil {
					t.Fatal(err)
				}
			}
			amount := map[payment.Status]int64{payment.StatusPartiallyRefunded: 400, payment.StatusRefunded: 1000}[tc.first]
			if amount > 0 {
				if _, err := s.Refund(ctx, first.ID, key("ada"), planOf(amount, "ada")); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := s.Payment(ctx, first.ID); got.Status != tc.first {
				t.Fatalf("set-up: first payment is %s, want %s", got.Status, tc.first)
			}
			err := s.Reserve(ctx, newPayment(order, "alice", 1000, base), key("alice"))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("second payment while the first is %s: %v, want %v", tc.first, err, tc.want)
			}
		}
	})
}

// TestConcurrentChargesOfOneOrder: many charges of one order at once, each with its own
// key: the database lets exactly one hold the order.
func TestConcurrentChargesOfOneOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		order := uuid.NewString()
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.Reserve(t.Context(), newPayment(order, "alice", 1000, base), key("alice")) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, payment.ErrPaymentInProgress) && !errors.Is(err, payment.ErrOrderPaid):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent reservations of one order succeeded, want exactly 1", won)
		}
		ps, err := s.Payments(t.Context(), payment.Filter{OrderID: order})
		if err != nil || len(ps) != 1 {
			t.Fatalf("payments of the order: %d, %v", len(ps), err)
		}
	})
}

func TestRefundWritesRefundAuditAndNoticeTogether(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		p := approved(t, s, "alice", 1000)
		k := key("ada")
		r, err := s.Refund(ctx, p.ID, k, planOf(400, "ada"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Payment(ctx, p.ID)
		if got.Refunded != 400 || got.Status != payment.StatusPartiallyRefunded || got.Outcome != payment.StatusApproved {
			t.Fatalf("payment after a partial refund: %+v", got)
		}
		byKey, fp, err := s.RefundByKey(ctx, "ada", k.Key)
		if err != nil || fp != k.Fingerprint || !reflect.DeepEqual(byKey, r) {
			t.Fatalf("refund by key: %+v %q %v\nwant %+v", byKey, fp, err, r)
		}
		audit, _ := s.Audit(ctx, payment.AuditFilter{})
		if len(audit) != 1 || audit[0].ActorSubject != "ada" || audit[0].Resource != "payment/"+p.ID || audit[0].RequestID != "req-ada" {
			t.Fatalf("audit: %+v", audit)
		}
		due, _ := s.DueNotices(ctx, base.Add(time.Hour), 10)
		if len(due) != 1 || due[0].Kind != payment.NoticeRefunded || due[0].RefundID != r.ID || due[0].PaymentID != p.ID ||
			due[0].Amount.Amount != 400 || due[0].RefundedTotal != 400 || due[0].FullyRefunded {
			t.Fatalf("notices: %+v", due)
		}

		// The rest: the payment becomes refunded.
		if _, err := s.Refund(ctx, p.ID, key("ada"), planOf(600, "ada")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Payment(ctx, p.ID)
		if got.Refunded != 1000 || got.Status != payment.StatusRefunded {
			t.Fatalf("payment after the full refund: %+v", got)
		}
		refunds, _ := s.Refunds(ctx, p.ID)
		if len(refunds) != 2 || !refunds[1].FullyRefunded {
			t.Fatalf("refunds: %+v", refunds)
		}
	})
}

// snapshot is everything a refund may write, to show that a refused one wrote nothing.
func snapshot(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	p, _ := s.Payment(t.Context(), id)
	refunds, _ := s.Refunds(t.Context(), id)
	audit, _ := s.Audit(t.Context(), payment.AuditFilter{})
	pending, _ := s.PendingNotices(t.Context())
	return fmt.Sprintf("%+v %d %d %d", p, len(refunds), len(audit), pending)
}

func TestRefusedRefundWritesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		p := approved(t, s, "alice", 1000)
		used := key("ada")
		if _, err := s.Refund(ctx, p.ID, used, planOf(100, "ada")); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s, p.ID)
		cases := map[string]struct {
			key  payment.Idempotency
			plan func(payment.Payment) (payment.RefundPlan, error)
			want error
		}{
			"the plan refuses": {key("ada"), planOf(5000, "ada"), &validation.Error{}},
			// A plan that ignores the limit (a bug in the domain) is stopped by the
			// conditional update itself.
			"the write refuses": {key("ada"), func(p payment.Payment) (payment.RefundPlan, error) {
				return rawPlan(p, 5000, "ada"), nil
			}, payment.ErrNotRefundable},
			"the key is taken": {used, planOf(100, "ada"), payment.ErrDuplicateKey},
		}
		for name, tc := range cases {
			_, err := s.Refund(ctx, p.ID, tc.key, tc.plan)
			if ve := (*validation.Error)(nil); errors.As(tc.want, &ve) {
				if !errors.As(err, &ve) {
					t.Errorf("%s: %v, want a validation error", name, err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", name, err, tc.want)
			}
			if after := snapshot(t, s, p.ID); after != before {
				t.Errorf("%s: the refusal changed the store:\n%s\n%s", name, before, after)
			}
		}
		if _, err := s.Refund(ctx, uuid.NewString(), key("ada"), planOf(1, "ada")); !errors.Is(err, payment.ErrNotFound) {
			t.Errorf("unknown payment: %v", err)
		}
	})
}

// TestConcurrentRefundsNeverExceedTheCharge: ten refunds of 300 race on a payment of 1000;
// three fit, and the refunded total is exactly the sum of the refunds written.
func TestConcurrentRefundsNeverExceedTheCharge(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		p := approved(t, s, "alice", 1000)
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Refund(t.Context(), p.ID, key("ada"), planOf(300, "ada")) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			var ve *validation.Error
			switch {
			case err == nil:
				ok++
			case !errors.As(err, &ve) && !errors.Is(err, payment.ErrNotRefundable):
				t.Errorf("unexpected error: %v", err)
			}
		}
		got, _ := s.Payment(t.Context(), p.ID)
		refunds, _ := s.Refunds(t.Context(), p.ID)
		var sum int64
		for _, r := range refunds {
			sum += r.Amount.Amount
		}
		if ok != 3 || got.Refunded != 900 || sum != 900 || len(refunds) != 3 {
			t.Fatalf("%d refunds succeeded, refunded %d, refund rows sum %d (%d rows); want 3, 900, 900", ok, got.Refunded, sum, len(refunds))
		}
	})
}

func TestListsFilterByOwnerStatusAndOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var alices []payment.Payment
		for i := range 3 {
			p := newPayment(uuid.NewString(), "alice", int64(100+i), base.Add(time.Duration(i)*time.Minute))
			if err := s.Reserve(ctx, p, key("alice")); err != nil {
				t.Fatal(err)
			}
			alices = append(alices, p)
		}
		bobs := approved(t, s, "bob", 500)

		mine, err := s.PaymentsOf(ctx, "alice", payment.Page{})
		if err != nil || len(mine) != 3 || mine[0].ID != alices[2].ID || mine[2].ID != alices[0].ID {
			t.Fatalf("alice's payments, newest first: %+v %v", mine, err)
		}
		paged, _ := s.PaymentsOf(ctx, "alice", payment.Page{Limit: 1, Offset: 1})
		if len(paged) != 1 || paged[0].ID != alices[1].ID {
			t.Fatalf("page 2 of 1: %+v", paged)
		}
		if _, err := s.PaymentsOf(ctx, "", payment.Page{}); err == nil {
			t.Fatal("an empty owner listed payments")
		}
		all, _ := s.Payments(ctx, payment.Filter{})
		if len(all) != 4 {
			t.Fatalf("all: %d", len(all))
		}
		byStatus, _ := s.Payments(ctx, payment.Filter{Status: payment.StatusApproved})
		if len(byStatus) != 1 || byStatus[0].ID != bobs.ID {
			t.Fatalf("approved: %+v", byStatus)
		}
		byOrder, _ := s.Payments(ctx, payment.Filter{OrderID: alices[1].OrderID})
		if len(byOrder) != 1 || byOrder[0].ID != alices[1].ID {
			t.Fatalf("by order: %+v", byOrder)
		}
	})
}

func TestOutboxDeliveryBookkeeping(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		p := approved(t, s, "alice", 1000)
		if _, err := s.Refund(ctx, p.ID, key("ada"), planOf(1000, "ada")); err != nil {
			t.Fatal(err)
		}
		pending, _ := s.DueNotices(ctx, base.Add(time.Hour), 10)
		if len(pending) != 1 {
			t.Fatalf("pending: %+v", pending)
		}
		at := pending[0].CreatedAt
		if due, _ := s.DueNotices(ctx, at.Add(-time.Microsecond), 10); len(due) != 0 {
			t.Fatalf("a notice was due before it was written: %+v", due)
		}
		due, _ := s.DueNotices(ctx, at, 10)
		if len(due) != 1 || !due[0].FullyRefunded || due[0].Attempts != 0 {
			t.Fatalf("due: %+v", due)
		}
		if err := s.MarkFailed(ctx, due[0].ID, 1, at.Add(time.Minute), "order service answered 503"); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.DueNotices(ctx, at.Add(30*time.Second), 10); len(again) != 0 {
			t.Fatalf("a postponed notice was due early: %+v", again)
		}
		later, _ := s.DueNotices(ctx, at.Add(time.Minute), 10)
		if len(later) != 1 || later[0].Attempts != 1 {
			t.Fatalf("after the backoff: %+v", later)
		}
		if err := s.MarkDelivered(ctx, due[0].ID, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PendingNotices(ctx); n != 0 {
			t.Fatalf("pending after delivery: %d", n)
		}
		if none, _ := s.DueNotices(ctx, at.Add(time.Hour), 10); len(none) != 0 {
			t.Fatalf("a delivered notice is due again: %+v", none)
		}
	})
}
