package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/database"
)

// Unpaid orders hold stock, so the store bounds them: CreateOrder caps how many one owner
// may hold (checkUnpaid), and ExpireOverdue cancels those not paid in time. Both decide in
// the database, so they hold across replicas with no state in memory.

// overdue is the SQL form of order.Order.Overdue, with the status and the time as its two
// parameters: pending, past the deadline, no charge attempt in flight. ExpireOverdue
// selects and updates on it; StartPaymentAttempt updates on its inverse, so of the two,
// racing on one order, exactly one matches.
const overdue = "status = ? AND payment_started_at IS NULL AND payment_due_at IS NOT NULL AND payment_due_at <= ?"

// unpaidLockClass names the per-owner locks of checkUnpaid among PostgreSQL's two-key
// advisory locks (a key space apart from the migration lock's single key).
const unpaidLockClass = 0x0bde7002

// checkUnpaid refuses a new order to an owner who already holds max pending orders that
// are still payable (an overdue one is about to expire and does not count). Two creates
// of one owner racing must not both see max-1: on PostgreSQL an advisory lock on the
// owner, held to the end of the transaction, makes them take turns, so the second counts
// the first's order; the count then sees it, committed, under READ COMMITTED. SQLite's
// transactions are immediate (platform/database): they take turns already.
func checkUnpaid(tx *gorm.DB, userID string, max int, now time.Time) error {
	if tx.Dialector.Name() == DriverPostgres {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", unpaidLockClass, userID).Error; err != nil {
			return err
		}
	}
	var n int64
	err := tx.Model(&orderRow{}).
		Where("user_id = ? AND status = ?", userID, string(order.StatusPending)).
		Where("NOT ("+overdue+")", string(order.StatusPending), now).
		Count(&n).Error
	if err != nil {
		return err
	}
	if n >= int64(max) {
		return order.UnpaidLimitError(max)
	}
	return nil
}

// ExpireOverdue expires up to limit orders overdue at now (order.Order.Overdue), earliest
// deadline first, each in a transaction of its own: the order is cancelled with reason
// order.CancelExpired, its stock goes back on the shelf, and audit(order) is written to
// the audit log. The cancel is a compare-and-set on the very condition that made the order
// overdue, so replicas expiring at the same time, a cancel, and a checkout starting a
// charge (StartPaymentAttempt) agree: an order expires at most once, its stock is released
// once, and an order with a charge in flight is never expired. It returns the orders this
// call expired; on an error, those expired before it.
func (s *Store) ExpireOverdue(ctx context.Context, now time.Time, limit int, audit func(order.Order) order.AuditEntry) ([]order.Order, error) {
	now = now.UTC().Truncate(time.Microsecond) // as database.Now stamps
	var ids []string
	err := s.db.WithContext(ctx).Model(&orderRow{}).Where(overdue, string(order.StatusPending), now).
		Order("payment_due_at, id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, err
	}
	var expired []order.Order
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return expired, err
		}
		o, done, err := s.expire(ctx, id, now, audit)
		if err != nil {
			return expired, err
		}
		if done {
			expired = append(expired, o)
		}
	}
	return expired, nil
}

// expire expires one order if it is still overdue; done reports whether this call did.
func (s *Store) expire(ctx context.Context, id string, now time.Time, audit func(order.Order) order.AuditEntry) (o order.Order, done bool, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		res := tx.db.Model(&orderRow{}).Where("id = ?", id).Where(overdue, string(order.StatusPending), now).
			Updates(map[string]any{"status": string(order.StatusCancelled), "cancel_reason": string(order.CancelExpired)})
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error // paid, cancelled, started or expired by someone else meanwhile
		}
		if err := release(tx.db, id); err != nil {
			return err
		}
		var err error
		if o, err = loadOrder(tx.db, id); err != nil {
			return err
		}
		return tx.Audit(ctx, audit(o))
	})
	return o, err == nil && o.ID != "", err
}

// orderHoldV1001 is what migration 20261204_1001 adds to the orders table. The index
// serves ExpireOverdue's search.
type orderHoldV1001 struct {
	Status       string     `gorm:"index:idx_orders_payment_due,priority:1"`
	PaymentDueAt *time.Time `gorm:"index:idx_orders_payment_due,priority:2"`
	CancelReason *string    `gorm:"size:16"`
}

func (orderHoldV1001) TableName() string { return "orders" }

// holdOfExistingOrdersV1001 is the hold orders already pending get when holds arrive,
// counted from the upgrade rather than from when they were placed: nobody loses an order
// to a rule that did not exist when they placed it. (The default ORDER_PAYMENT_HOLD of the
// release that brought holds, frozen here.)
const holdOfExistingOrdersV1001 = 15 * time.Minute

func migratePaymentHold(tx *gorm.DB) error {
	m := tx.Migrator()
	for _, column := range []string{"PaymentDueAt", "CancelReason"} {
		if err := m.AddColumn(&orderHoldV1001{}, column); err != nil {
			return err
		}
	}
	if err := m.CreateIndex(&orderHoldV1001{}, "idx_orders_payment_due"); err != nil {
		return err
	}
	if err := tx.Table("orders").Where("status = ?", "pending").
		UpdateColumn("payment_due_at", database.Now().Add(holdOfExistingOrdersV1001)).Error; err != nil {
		return err
	}
	return tx.Table("orders").Where("status = ?", "cancelled").
		UpdateColumn("cancel_reason", "requested").Error
}

func rollbackPaymentHold(tx *gorm.DB) error {
	m := tx.Migrator()
	if err := m.DropIndex(&orderHoldV1001{}, "idx_orders_payment_due"); err != nil {
		return err
	}
	for _, column := range []string{"CancelReason", "PaymentDueAt"} {
		if err := m.DropColumn(&orderHoldV1001{}, column); err != nil {
			return err
		}
	}
	return nil
}
