package store

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/database"
)

// TestOrderNoticesMigrationKeepsUndeliveredRefundNotices: a database that still has the
// refund_notices outbox of migration 0001, with a refund notice waiting, is upgraded; the
// notice is still due afterwards, now as a refunded notice, and paid notices fit beside it.
func TestOrderNoticesMigrationKeepsUndeliveredRefundNotices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payment.db")
	old, err := database.Open(t.Context(), database.Config{Driver: database.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	m := gormigrate.New(old, &gormigrate.Options{TableName: migrationsTable, IDColumnName: "id", IDColumnSize: 255, UseTransaction: true},
		migrations()[:1])
	if err := m.Migrate(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, stmt := range []string{
		`INSERT INTO payments (id, order_id, user_id, amount, currency, refunded, status, outcome, reason, card_brand, card_last4, ` +
			`idempotency_subject, idempotency_key, request_hash, created_at, updated_at) VALUES ('p1', 'o1', 'alice', 1000, 'EUR', 1000, ` +
			`'refunded', 'approved', '', 'visa', '4242', 'alice', 'k1', 'h', ?, ?)`,
		`INSERT INTO refunds (id, payment_id, order_id, amount, currency, fully_refunded, actor_subject, idempotency_subject, ` +
			`idempotency_key, request_hash, created_at) VALUES ('r1', 'p1', 'o1', 1000, 'EUR', true, 'ada', 'ada', 'k2', 'h', ?)`,
		`INSERT INTO refund_notices (id, refund_id, payment_id, order_id, amount, currency, refunded_total, fully_refunded, ` +
			`request_id, attempts, next_attempt_at, last_error, created_at) VALUES ('n1', 'r1', 'p1', 'o1', 1000, 'EUR', 1000, true, ` +
			`'req-1', 3, ?, 'order service answered 503', ?)`,
	} {
		args := []any{at, at}
		if err := old.Exec(stmt, args[:strings.Count(stmt, "?")]...).Error; err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := database.Close(old); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), Options{Driver: DriverSQLite, DSN: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.DueNotices(t.Context(), at, 10)
	want := payment.Notice{ID: "n1", Kind: payment.NoticeRefunded, OrderID: "o1", PaymentID: "p1", RefundID: "r1",
		Amount: payment.Money{Amount: 1000, Currency: "EUR"}, RefundedTotal: 1000, FullyRefunded: true, RequestID: "req-1",
		CreatedAt: at, Attempts: 3}
	if err != nil || len(due) != 1 || due[0] != want {
		t.Fatalf("after the upgrade: %+v %v\nwant %+v", due, err, want)
	}
	if s.db.Migrator().HasTable("refund_notices") {
		t.Fatal("refund_notices is still there")
	}
	paid := newNoticeRow(payment.Notice{ID: "n2", Kind: payment.NoticePaid, OrderID: "o1", PaymentID: "p1",
		Amount: payment.Money{Amount: 1000, Currency: "EUR"}, CreatedAt: at})
	if err := s.db.Create(&paid).Error; err != nil {
		t.Fatalf("a paid notice beside it: %v", err)
	}
	again := paid
	again.ID = "n3"
	if err := s.db.Create(&again).Error; err == nil {
		t.Fatal("a second paid notice for the same payment was accepted")
	}
}
