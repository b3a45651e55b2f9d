// Package store keeps the payment service's data with GORM: payments, refunds, the audit log
// and the outbox of notices to the order service, on SQLite (the embedded default, pure Go,
// no cgo) or PostgreSQL, behind payment.Store. The schema is built by versioned migrations
// (gormigrate) when the store opens.
//
// The invariants that money depends on are enforced here, in the database, where concurrent
// requests meet: a partial unique index lets at most one payment per order hold its payment
// slot, and a refund raises a payment's refunded total with a conditional update that
// re-checks the limit in the write itself.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/database"
)

// Drivers are the supported database drivers.
const (
	DriverSQLite   = database.DriverSQLite
	DriverPostgres = database.DriverPostgres
)

// Options say which database to open. A nil Logger means slog.Default(): the store logs
// its failed and slow statements, tagged component=store.
type Options = database.Config

// Store implements payment.Store and the outbox's store on a GORM database.
type Store struct {
	db *gorm.DB
}

var _ payment.Store = (*Store)(nil)

// Open connects to the database (with the settings database.Open gives both drivers) and
// brings its schema up to date.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "store")
	db, err := database.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db}
	if err := s.migrate(ctx, o.Driver); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, driver string) error {
	run := func(db *gorm.DB) error {
		m := gormigrate.New(db, &gormigrate.Options{
			TableName: migrationsTable, IDColumnName: "id", IDColumnSize: 255,
			// Both databases roll DDL back, so a failed migration leaves no half schema.
			UseTransaction: true,
			// A database migrated by a newer version of the service is not ours to run on.
			ValidateUnknownMigrations: true,
		}, migrations())
		if err := m.Migrate(); err != nil {
			return fmt.Errorf("store: migrating: %w", err)
		}
		return nil
	}
	db := s.db.WithContext(ctx)
	if driver != DriverPostgres {
		return run(db)
	}
	// Replicas starting together must not migrate at the same time: an advisory lock held
	// on one pinned connection serialises them.
	return db.Connection(func(conn *gorm.DB) error {
		const lock = "SELECT pg_advisory_lock(hashtext('" + migrationsTable + "'))"
		if err := conn.Exec(lock).Error; err != nil {
			return fmt.Errorf("store: taking the migration lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(hashtext('" + migrationsTable + "'))")
		return run(conn)
	})
}

// Close closes the database.
func (s *Store) Close() error { return database.Close(s.db) }

// Ping checks the database, for the readiness probe.
func (s *Store) Ping(ctx context.Context) error { return database.Ping(ctx, s.db) }

// paymentRow is a row of payments.
type paymentRow struct {
	ID                 string `gorm:"primaryKey"`
	OrderID            string
	UserID             string
	Amount             int64
	Currency           string
	Refunded           int64
	Status             string
	Outcome            string
	Reason             string
	CardBrand          string
	CardLast4          string
	IdempotencySubject string
	IdempotencyKey     string
	RequestHash        string
	CreatedAt          time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt          time.Time `gorm:"autoUpdateTime:false"`
}

func (paymentRow) TableName() string { return "payments" }

func (r paymentRow) domain() payment.Payment {
	return payment.Payment{
		ID: r.ID, OrderID: r.OrderID, UserID: r.UserID,
		Amount:   payment.Money{Amount: r.Amount, Currency: r.Currency},
		Refunded: r.Refunded, Status: payment.Status(r.Status), Outcome: payment.Status(r.Outcome),
		Reason: payment.Reason(r.Reason), CardBrand: payment.Brand(r.CardBrand), CardLast4: r.CardLast4,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type refundRow struct {
	ID                 string `gorm:"primaryKey"`
	PaymentID          string
	OrderID            string
	Amount             int64
	Currency           string
	FullyRefunded      bool
	ActorSubject       string
	ActorName          string
	RequestID          string
	IdempotencySubject string
	IdempotencyKey     string
	RequestHash        string
	CreatedAt          time.Time `gorm:"autoCreateTime:false"`
}

func (refundRow) TableName() string { return "refunds" }

func (r refundRow) domain() payment.Refund {
	return payment.Refund{
		ID: r.ID, PaymentID: r.PaymentID, OrderID: r.OrderID,
		Amount:        payment.Money{Amount: r.Amount, Currency: r.Currency},
		FullyRefunded: r.FullyRefunded,
		By:            payment.Actor{Subject: r.ActorSubject, Username: r.ActorName, Admin: true, RequestID: r.RequestID},
		CreatedAt:     r.CreatedAt.UTC(),
	}
}

type auditRow struct {
	ID           string `gorm:"primaryKey"`
	At           time.Time
	ActorSubject string
	ActorName    string
	Action       string
	Resource     string
	Detail       string
	RequestID    string
}

func (auditRow) TableName() string { return "audit_entries" }

type noticeRow struct {
	ID            string `gorm:"primaryKey"`
	Kind          string
	RefundID      *string
	PaymentID     string
	OrderID       string
	Amount        int64
	Currency      string
	RefundedTotal int64
	FullyRefunded bool
	RequestID     string
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	LastError     string
	CreatedAt     time.Time `gorm:"autoCreateTime:false"`
}

func (noticeRow) TableName() string { return "order_notices" }

func newNoticeRow(n payment.Notice) noticeRow {
	r := noticeRow{
		ID: n.ID, Kind: string(n.Kind), PaymentID: n.PaymentID, OrderID: n.OrderID, Amount: n.Amount.Amount,
		Currency: n.Amount.Currency, RefundedTotal: n.RefundedTotal, FullyRefunded: n.FullyRefunded, RequestID: n.RequestID,
		NextAttemptAt: n.CreatedAt.UTC(), CreatedAt: n.CreatedAt.UTC(),
	}
	if n.RefundID != "" {
		r.RefundID = &n.RefundID
	}
	return r
}

func (r noticeRow) domain() payment.Notice {
	n := payment.Notice{
		ID: r.ID, Kind: payment.NoticeKind(r.Kind), OrderID: r.OrderID, PaymentID: r.PaymentID,
		Amount: payment.Money{Amount: r.Amount, Currency: r.Currency}, RefundedTotal: r.RefundedTotal,
		FullyRefunded: r.FullyRefunded, RequestID: r.RequestID, CreatedAt: r.CreatedAt.UTC(), Attempts: r.Attempts,
	}
	if r.RefundID != nil {
		n.RefundID = *r.RefundID
	}
	return n
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// Reserve implements payment.Store.
func (s *Store) Reserve(ctx context.Context, p payment.Payment, key payment.Idempotency) error {
	row := paymentRow{
		ID: p.ID, OrderID: p.OrderID, UserID: p.UserID, Amount: p.Amount.Amount, Currency: p.Amount.Currency,
		Refunded: p.Refunded, Status: string(p.Status), Outcome: string(p.Outcome), Reason: string(p.Reason),
		CardBrand: string(p.CardBrand), CardLast4: p.CardLast4,
		IdempotencySubject: key.Subject, IdempotencyKey: key.Key, RequestHash: key.Fingerprint,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	err := s.db.WithContext(ctx).Create(&row).Error
	if !errors.Is(err, gorm.ErrDuplicatedKey) {
		return err
	}
	// Two unique indexes can refuse the row; tell them apart by what is there now.
	if _, _, err := s.PaymentByKey(ctx, key.Subject, key.Key); err == nil {
		return payment.ErrDuplicateKey
	}
	var holder paymentRow
	err = s.db.WithContext(ctx).Where("order_id = ? AND status IN ?", p.OrderID, strs(payment.HoldingStatuses)).
		Take(&holder).Error
	if err == nil && holder.Status != string(payment.StatusProcessing) {
		return payment.ErrOrderPaid
	}
	// Processing, or released in the meantime: either way another charge was in flight.
	return payment.ErrPaymentInProgress
}

// Finish implements payment.Store.
func (s *Store) Finish(ctx context.Context, id string, outcome payment.Status, reason payment.Reason, at time.Time, notice *payment.Notice) (payment.Payment, error) {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&paymentRow{}).
			Where("id = ? AND status = ?", id, payment.StatusProcessing).
			Updates(map[string]any{"status": string(outcome), "outcome": string(outcome), "reason": string(reason), "updated_at": at.UTC()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("store: payment %s: %w", id, payment.ErrNotProcessing)
		}
		if notice == nil {
			return nil
		}
		row := newNoticeRow(*notice)
		return tx.Create(&row).Error
	})
	if err != nil {
		return payment.Payment{}, err
	}
	return s.Payment(ctx, id)
}

// Stuck implements payment.Store.
func (s *Store) Stuck(ctx context.Context, before time.Time, limit int) ([]payment.Payment, error) {
	var rows []paymentRow
	err := s.db.WithContext(ctx).
		Where("status = ? AND updated_at < ?", payment.StatusProcessing, before.UTC()).
		Order("updated_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// PaymentByKey implements payment.Store.
func (s *Store) PaymentByKey(ctx context.Context, subject, key string) (payment.Payment, string, error) {
	var row paymentRow
	err := s.db.WithContext(ctx).Where("idempotency_subject = ? AND idempotency_key = ?", subject, key).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return payment.Payment{}, "", payment.ErrNotFound
	}
	if err != nil {
		return payment.Payment{}, "", err
	}
	return row.domain(), row.RequestHash, nil
}

// Payment implements payment.Store.
func (s *Store) Payment(ctx context.Context, id string) (payment.Payment, error) {
	var row paymentRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return payment.Payment{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.Payment{}, err
	}
	return row.domain(), nil
}

// PaymentsOf implements payment.Store.
func (s *Store) PaymentsOf(ctx context.Context, owner string, page payment.Page) ([]payment.Payment, error) {
	if owner == "" {
		return nil, errors.New("store: listing payments needs an owner")
	}
	return s.listPayments(s.db.WithContext(ctx).Where("user_id = ?", owner), page)
}

// Payments implements payment.Store.
func (s *Store) Payments(ctx context.Context, f payment.Filter) ([]payment.Payment, error) {
	q := s.db.WithContext(ctx)
	if f.OrderID != "" {
		q = q.Where("order_id = ?", f.OrderID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	}
	return s.listPayments(q, f.Page)
}

func (s *Store) listPayments(q *gorm.DB, page payment.Page) ([]payment.Payment, error) {
	var rows []paymentRow
	if err := paged(q, page).Order("created_at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

func paged(q *gorm.DB, page payment.Page) *gorm.DB {
	if page.Limit > 0 {
		q = q.Limit(page.Limit)
	}
	if page.Offset > 0 {
		q = q.Offset(page.Offset)
	}
	return q
}

// errConcurrentRefund means the payment changed between the plan and the write, which the
// row lock should make impossible; it is answered like any other state conflict.
var errConcurrentRefund = fmt.Errorf("%w: it changed while the refund was being written", payment.ErrNotRefundable)

// Refund implements payment.Store.
func (s *Store) Refund(ctx context.Context, paymentID string, key payment.Idempotency, plan func(payment.Payment) (payment.RefundPlan, error)) (payment.Refund, error) {
	var out payment.Refund
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// FOR UPDATE on PostgreSQL; SQLite has no row locks (GORM leaves the clause out) and
		// needs none: its IMMEDIATE transactions already run one writer at a time.
		var row paymentRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Where("id = ?", paymentID).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return payment.ErrNotFound
		}
		if err != nil {
			return err
		}
		pl, err := plan(row.domain())
		if err != nil {
			return err
		}
		r := pl.Refund
		// The guard repeats the rules in the write itself: whatever happened since the read,
		// this update never takes refunded past amount.
		res := tx.Model(&paymentRow{}).
			Where("id = ? AND status IN ? AND refunded + ? <= amount", paymentID, strs(payment.RefundableStatuses), r.Amount.Amount).
			Updates(map[string]any{
				"refunded": gorm.Expr("refunded + ?", r.Amount.Amount),
				"status": gorm.Expr("CASE WHEN refunded + ? = amount THEN ? ELSE ? END",
					r.Amount.Amount, string(payment.StatusRefunded), string(payment.StatusPartiallyRefunded)),
				"updated_at": r.CreatedAt.UTC(),
			})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return errConcurrentRefund
		}
		if err := tx.Create(&refundRow{
			ID: r.ID, PaymentID: r.PaymentID, OrderID: r.OrderID, Amount: r.Amount.Amount, Currency: r.Amount.Currency,
			FullyRefunded: r.FullyRefunded, ActorSubject: r.By.Subject, ActorName: r.By.Username, RequestID: r.By.RequestID,
			IdempotencySubject: key.Subject, IdempotencyKey: key.Key, RequestHash: key.Fingerprint, CreatedAt: r.CreatedAt.UTC(),
		}).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return payment.ErrDuplicateKey
			}
			return err
		}
		a := pl.Audit
		if err := tx.Create(&auditRow{
			ID: a.ID, At: a.At.UTC(), ActorSubject: a.ActorSubject, ActorName: a.ActorName, Action: a.Action,
			Resource: a.Resource, Detail: a.Detail, RequestID: a.RequestID,
		}).Error; err != nil {
			return err
		}
		notice := newNoticeRow(pl.Notice)
		if err := tx.Create(&notice).Error; err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// RefundByKey implements payment.Store.
func (s *Store) RefundByKey(ctx context.Context, subject, key string) (payment.Refund, string, error) {
	var row refundRow
	err := s.db.WithContext(ctx).Where("idempotency_subject = ? AND idempotency_key = ?", subject, key).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return payment.Refund{}, "", payment.ErrNotFound
	}
	if err != nil {
		return payment.Refund{}, "", err
	}
	return row.domain(), row.RequestHash, nil
}

// Refunds lists the refunds of a payment, oldest first.
func (s *Store) Refunds(ctx context.Context, paymentID string) ([]payment.Refund, error) {
	var rows []refundRow
	if err := s.db.WithContext(ctx).Where("payment_id = ?", paymentID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]payment.Refund, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// Audit implements payment.Store.
func (s *Store) Audit(ctx context.Context, f payment.AuditFilter) ([]payment.AuditEntry, error) {
	db := paged(s.db.WithContext(ctx), f.Page)
	if f.Action != "" {
		db = db.Where("action = ?", f.Action)
	}
	if f.Actor != "" {
		db = db.Where("actor_name = ?", f.Actor)
	}
	var rows []auditRow
	if err := db.Order("at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]payment.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = payment.AuditEntry{ID: r.ID, At: r.At.UTC(), ActorSubject: r.ActorSubject, ActorName: r.ActorName,
			Action: r.Action, Resource: r.Resource, Detail: r.Detail, RequestID: r.RequestID}
	}
	return out, nil
}

// DueNotices returns undelivered notices whose next attempt is due at now, oldest due first.
func (s *Store) DueNotices(ctx context.Context, now time.Time, limit int) ([]payment.Notice, error) {
	var rows []noticeRow
	err := s.db.WithContext(ctx).Where("delivered_at IS NULL AND next_attempt_at <= ?", now.UTC()).
		Order("next_attempt_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]payment.Notice, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// PendingNotices counts the notices not delivered yet: the outbox's backlog.
func (s *Store) PendingNotices(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&noticeRow{}).Where("delivered_at IS NULL").Count(&n).Error
	return n, err
}

// MarkDelivered records that the order service acknowledged notice id.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return s.db.WithContext(ctx).Model(&noticeRow{}).Where("id = ? AND delivered_at IS NULL", id).
		Updates(map[string]any{"delivered_at": at.UTC(), "last_error": ""}).Error
}

// MarkFailed records a failed attempt at notice id and when to try again.
func (s *Store) MarkFailed(ctx context.Context, id string, attempts int, next time.Time, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	return s.db.WithContext(ctx).Model(&noticeRow{}).Where("id = ? AND delivered_at IS NULL", id).
		Updates(map[string]any{"attempts": attempts, "next_attempt_at": next.UTC(), "last_error": reason}).Error
}
