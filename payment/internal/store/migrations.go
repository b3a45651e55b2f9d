package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrationsTable keeps this service's applied migrations. It is named after the service so
// that a database shared with another service (as in a small deployment) cannot mix them up.
const migrationsTable = "payment_migrations"

// migrations are the schema's versions, oldest first. Each migration declares its own
// structs, frozen as they were when it was written: the models of store.go move on, an
// applied migration never does. Never edit an applied migration; add the next one.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{
			ID: "20251128_0001_payments_refunds_audit_notices",
			Migrate: func(tx *gorm.DB) error {
				type payment struct {
					ID      string `gorm:"primaryKey;size:36"`
					OrderID string `gorm:"size:36;not null;index"`
					UserID  string `gorm:"size:255;not null;index:idx_payments_user_created,priority:1"`
					// Money stays in integer minor units; the checks are the last line of
					// defence should a bug ever try to refund more than was charged.
					Amount   int64  `gorm:"not null;check:chk_payments_amount_positive,amount > 0"`
					Currency string `gorm:"size:3;not null"`
					Refunded int64  `gorm:"not null;default:0;check:chk_payments_refunded_within_amount,refunded >= 0 AND refunded <= amount"`
					Status   string `gorm:"size:24;not null;index"`
					Outcome  string `gorm:"size:24;not null;default:''"`
					Reason   string `gorm:"size:32;not null;default:''"`
					// Only brand and last four digits of a card are ever stored.
					CardBrand          string    `gorm:"size:16;not null"`
					CardLast4          string    `gorm:"size:4;not null"`
					IdempotencySubject string    `gorm:"size:255;not null;uniqueIndex:uq_payments_idempotency,priority:1"`
					IdempotencyKey     string    `gorm:"size:128;not null;uniqueIndex:uq_payments_idempotency,priority:2"`
					RequestHash        string    `gorm:"size:64;not null"`
					CreatedAt          time.Time `gorm:"not null;index:idx_payments_user_created,priority:2"`
					UpdatedAt          time.Time `gorm:"not null"`
				}
				type refund struct {
					ID                 string    `gorm:"primaryKey;size:36"`
					PaymentID          string    `gorm:"size:36;not null;index"`
					Payment            *payment  `gorm:"foreignKey:PaymentID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT"`
					OrderID            string    `gorm:"size:36;not null"`
					Amount             int64     `gorm:"not null;check:chk_refunds_amount_positive,amount > 0"`
					Currency           string    `gorm:"size:3;not null"`
					FullyRefunded      bool      `gorm:"not null"`
					ActorSubject       string    `gorm:"size:255;not null"`
					ActorName          string    `gorm:"size:255;not null;default:''"`
					RequestID          string    `gorm:"size:128;not null;default:''"`
					IdempotencySubject string    `gorm:"size:255;not null;uniqueIndex:uq_refunds_idempotency,priority:1"`
					IdempotencyKey     string    `gorm:"size:128;not null;uniqueIndex:uq_refunds_idempotency,priority:2"`
					RequestHash        string    `gorm:"size:64;not null"`
					CreatedAt          time.Time `gorm:"not null"`
				}
				type auditEntry struct {
					ID           string    `gorm:"primaryKey;size:36"`
					At           time.Time `gorm:"not null;index"`
					ActorSubject string    `gorm:"size:255;not null"`
					ActorName    string    `gorm:"size:255;not null;default:''"`
					Action       string    `gorm:"size:64;not null"`
					Resource     string    `gorm:"size:128;not null"`
					Detail       string    `gorm:"type:text;not null"`
					RequestID    string    `gorm:"size:128;not null;default:''"`
				}
				// refundNotice is the outbox: a notice is committed with its refund and
				// delivered afterwards until the order service acknowledges it.
				type refundNotice struct {
					ID            string     `gorm:"primaryKey;size:36"`
					RefundID      string     `gorm:"size:36;not null;uniqueIndex"`
					Refund        *refund    `gorm:"foreignKey:RefundID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT"`
					PaymentID     string     `gorm:"size:36;not null"`
					OrderID       string     `gorm:"size:36;not null"`
					Amount        int64      `gorm:"not null"`
					Currency      string     `gorm:"size:3;not null"`
					RefundedTotal int64      `gorm:"not null"`
					FullyRefunded bool       `gorm:"not null"`
					RequestID     string     `gorm:"size:128;not null;default:''"`
					Attempts      int        `gorm:"not null;default:0"`
					NextAttemptAt time.Time  `gorm:"not null;index"`
					DeliveredAt   *time.Time `gorm:"index"`
					LastError     string     `gorm:"size:500;not null;default:''"`
					CreatedAt     time.Time  `gorm:"not null"`
				}
				if err := tx.Migrator().CreateTable(&payment{}, &refund{}, &auditEntry{}, &refundNotice{}); err != nil {
					return err
				}
				// At most one payment per order may hold its payment slot (processing,
				// approved, partially refunded, refunded): the database, not a check before
				// the insert, is what makes a concurrent second charge impossible. Partial
				// indexes read the same in SQLite and PostgreSQL.
				return tx.Exec(`CREATE UNIQUE INDEX uq_payments_order_holding ON payments (order_id) ` +
					`WHERE status IN ('processing', 'approved', 'partially_refunded', 'refunded')`).Error
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("refund_notices", "audit_entries", "refunds", "payments")
			},
		},
		{
			// The outbox carries paid notices beside refund notices (issue 6: settlement), so
			// refund_notices becomes order_notices with a kind, and the refund id is only set
			// on refund notices. Undelivered notices are carried over.
			ID: "20260710_0002_order_notices",
			Migrate: func(tx *gorm.DB) error {
				if err := tx.Migrator().CreateTable(&orderNoticeV2{}); err != nil {
					return err
				}
				if err := tx.Exec(`INSERT INTO order_notices (id, kind, refund_id, payment_id, order_id, amount, currency, ` +
					`refunded_total, fully_refunded, request_id, attempts, next_attempt_at, delivered_at, last_error, created_at) ` +
					`SELECT id, 'refunded', refund_id, payment_id, order_id, amount, currency, refunded_total, fully_refunded, ` +
					`request_id, attempts, next_attempt_at, delivered_at, last_error, created_at FROM refund_notices`).Error; err != nil {
					return err
				}
				if err := tx.Migrator().DropTable("refund_notices"); err != nil {
					return err
				}
				// One paid notice per payment: an approval is reported once.
				return tx.Exec(`CREATE UNIQUE INDEX uq_order_notices_paid ON order_notices (payment_id) WHERE kind = 'paid'`).Error
			},
			Rollback: func(tx *gorm.DB) error {
				if err := tx.Migrator().CreateTable(&refundNoticeV1{}); err != nil {
					return err
				}
				// Paid notices have no place in the old schema: rolling back drops them, and
				// with them the settlement of orders whose checkout missed the approval.
				if err := tx.Exec(`INSERT INTO refund_notices (id, refund_id, payment_id, order_id, amount, currency, ` +
					`refunded_total, fully_refunded, request_id, attempts, next_attempt_at, delivered_at, last_error, created_at) ` +
					`SELECT id, refund_id, payment_id, order_id, amount, currency, refunded_total, fully_refunded, ` +
					`request_id, attempts, next_attempt_at, delivered_at, last_error, created_at FROM order_notices ` +
					`WHERE kind = 'refunded'`).Error; err != nil {
					return err
				}
				return tx.Migrator().DropTable("order_notices")
			},
		},
	}
}

// paymentRefV1 and refundRefV1 stand for the payments and refunds tables where a later migration only needs
// their primary key, for a foreign key.
type paymentRefV1 struct {
	ID string `gorm:"primaryKey;size:36"`
}

func (paymentRefV1) TableName() string { return "payments" }

type refundRefV1 struct {
	ID string `gorm:"primaryKey;size:36"`
}

func (refundRefV1) TableName() string { return "refunds" }

// refundNoticeV1 is the outbox as migration 0001 created it (for 0002's rollback).
type refundNoticeV1 struct {
	ID            string       `gorm:"primaryKey;size:36"`
	RefundID      string       `gorm:"size:36;not null;uniqueIndex"`
	Refund        *refundRefV1 `gorm:"foreignKey:RefundID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT"`
	PaymentID     string       `gorm:"size:36;not null"`
	OrderID       string       `gorm:"size:36;not null"`
	Amount        int64        `gorm:"not null"`
	Currency      string       `gorm:"size:3;not null"`
	RefundedTotal int64        `gorm:"not null"`
	FullyRefunded bool         `gorm:"not null"`
	RequestID     string       `gorm:"size:128;not null;default:''"`
	Attempts      int          `gorm:"not null;default:0"`
	NextAttemptAt time.Time    `gorm:"not null;index"`
	DeliveredAt   *time.Time   `gorm:"index"`
	LastError     string       `gorm:"size:500;not null;default:''"`
	CreatedAt     time.Time    `gorm:"not null"`
}

func (refundNoticeV1) TableName() string { return "refund_notices" }

// orderNoticeV2 is the outbox as migration 0002 creates it: notices of approved charges
// (paid) and of refunds (refunded) to the order service.
type orderNoticeV2 struct {
	ID   string `gorm:"primaryKey;size:36"`
	Kind string `gorm:"size:16;not null;check:chk_order_notices_kind,kind IN ('paid', 'refunded')"`
	// RefundID is set on refund notices only; NULLs never collide in the unique index.
	RefundID      *string       `gorm:"size:36;uniqueIndex"`
	Refund        *refundRefV1  `gorm:"foreignKey:RefundID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT"`
	PaymentID     string        `gorm:"size:36;not null"`
	Payment       *paymentRefV1 `gorm:"foreignKey:PaymentID;constraint:OnUpdate:RESTRICT,OnDelete:RESTRICT"`
	OrderID       string        `gorm:"size:36;not null"`
	Amount        int64         `gorm:"not null"`
	Currency      string        `gorm:"size:3;not null"`
	RefundedTotal int64         `gorm:"not null;default:0"`
	FullyRefunded bool          `gorm:"not null;default:false"`
	RequestID     string        `gorm:"size:128;not null;default:''"`
	Attempts      int           `gorm:"not null;default:0"`
	NextAttemptAt time.Time     `gorm:"not null;index"`
	DeliveredAt   *time.Time    `gorm:"index"`
	LastError     string        `gorm:"size:500;not null;default:''"`
	CreatedAt     time.Time     `gorm:"not null"`
}

func (orderNoticeV2) TableName() string { return "order_notices" }
