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
	}
}
