package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/database"
)

// NewOrder is what it takes to create an order. UserID and Customer come from the verified
// token, Lines from the request (validated with order.ValidateLines).
type NewOrder struct {
	UserID   string
	Customer string
	Lines    []order.Line
	// IdempotencyKey is optional; with one, at most one order is ever created per user
	// and key.
	IdempotencyKey string
	// PaymentHold is how long the order may stay unpaid before it expires
	// (order.Rules.PaymentHold); zero sets no deadline.
	PaymentHold time.Duration
	// MaxUnpaid is how many pending orders the owner may hold, this one included
	// (order.Rules.MaxUnpaid); zero sets no cap.
	MaxUnpaid int
}

// CreateOrder prices the lines from the catalog, reserves their stock and stores the order,
// all in one transaction: either the whole order exists with its stock taken, or nothing
// changed. With an Idempotency-Key already used by the same user for the same lines, it
// returns that order and replayed is true; for other lines it fails with
// order.ErrIdempotencyMismatch. An owner who already holds MaxUnpaid pending orders gets
// order.ErrTooManyUnpaid (a replay is still answered: it creates nothing).
func (s *Store) CreateOrder(ctx context.Context, in NewOrder) (o order.Order, replayed bool, err error) {
	if in.UserID == "" {
		return order.Order{}, false, errors.New("store: an order needs an owner")
	}
	o, replayed, err = s.createOrder(ctx, in)
	if errors.Is(err, gorm.ErrDuplicatedKey) && in.IdempotencyKey != "" {
		// A concurrent request with the same key committed first: on PostgreSQL the unique
		// index made this insert wait for it and then fail, and this transaction's stock
		// reservation was rolled back. The first request's order is the answer.
		var found bool
		o, found, err = replay(s.db.WithContext(ctx), in)
		if err == nil && !found {
			err = errors.New("store: idempotency key conflict without an order")
		}
		return o, found, err
	}
	return o, replayed, err
}

func (s *Store) createOrder(ctx context.Context, in NewOrder) (o order.Order, replayed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if in.IdempotencyKey != "" {
			var found bool
			if o, found, err = replay(tx, in); err != nil || found {
				replayed = found
				return err
			}
		}
		now := database.Now()
		if in.MaxUnpaid > 0 {
			if err := checkUnpaid(tx, in.UserID, in.MaxUnpaid, now); err != nil {
				return err
			}
		}
		ids := make([]string, len(in.Lines))
		for i, l := range in.Lines {
			ids[i] = l.ProductID
		}
		var products []productRow
		if err := tx.Where("id IN ?", ids).Find(&products).Error; err != nil {
			return err
		}
		catalog := make(map[string]order.Product, len(products))
		for _, p := range products {
			catalog[p.ID] = p.domain()
		}
		items, total, err := order.Price(in.Lines, catalog)
		if err != nil {
			return err
		}
		if err := reserve(tx, in.Lines, catalog); err != nil {
			return err
		}
		number, err := nextOrderNumber(tx)
		if err != nil {
			return err
		}
		row := orderRow{
			ID: uuid.Must(uuid.NewV7()).String(), Number: number, UserID: in.UserID, Customer: in.Customer,
			RequestHash: order.Fingerprint(in.Lines), Status: string(order.StatusPending),
			Currency: total.Currency, TotalAmount: total.Amount, CreatedAt: now,
		}
		if in.PaymentHold > 0 {
			due := now.Add(in.PaymentHold)
			row.PaymentDueAt = &due
		}
		if in.IdempotencyKey != "" {
			row.IdempotencyKey = &in.IdempotencyKey
		}
		for i, it := range items {
			row.Items = append(row.Items, orderItemRow{
				OrderID: row.ID, Position: i, ProductID: it.ProductID, Name: it.Name,
				Currency: it.UnitPrice.Currency, UnitPriceAmount: it.UnitPrice.Amount,
				Quantity: it.Quantity, LineTotalAmount: it.LineTotal.Amount,
			})
		}
		// The order row first, then its items, each an explicit insert: GORM's implicit
		// association saving would upsert and hide mistakes.
		if err := tx.Omit("Items").Create(&row).Error; err != nil {
			return err
		}
		if err := tx.Create(&row.Items).Error; err != nil {
			return err
		}
		o = row.domain()
		return nil
	})
	return o, replayed, err
}

// nextOrderNumber hands out the next order number, unique across replicas. PostgreSQL's
// sequence does it without locking, at the cost of a gap when a transaction that took a
// number rolls back. SQLite has no sequences, and needs none: the transaction is immediate
// (platform/database), so it holds the database's only write lock from its start, and no
// other transaction can read the same maximum. The unique index backs both.
func nextOrderNumber(tx *gorm.DB) (int64, error) {
	var n int64
	q := "SELECT COALESCE(MAX(number), ?) + 1 FROM orders"
	args := []any{firstOrderNumber - 1}
	if tx.Dialector.Name() == DriverPostgres {
		q, args = "SELECT nextval(?)", []any{orderNumberSequence}
	}
	err := tx.Raw(q, args...).Scan(&n).Error
	return n, err
}

// reserve takes each line's quantity from stock with a conditional update: the WHERE
// clause lets it succeed only while enough is left, so two shoppers racing for the last
// item cannot both get it, whatever the isolation level. Lines are reserved in product id
// order: two orders that share products lock them in the same order, so PostgreSQL can
// never deadlock one against the other.
func reserve(tx *gorm.DB, lines []order.Line, catalog map[string]order.Product) error {
	sorted := slices.SortedFunc(slices.Values(lines), func(a, b order.Line) int { return cmp.Compare(a.ProductID, b.ProductID) })
	for _, l := range sorted {
		res := tx.Model(&productRow{}).
			Where("id = ? AND active = ? AND stock >= ?", l.ProductID, true, l.Quantity).
			UpdateColumn("stock", gorm.Expr("stock - ?", l.Quantity))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w for %q", order.ErrOutOfStock, catalog[l.ProductID].Name)
		}
	}
	return nil
}

// replay looks up the order a user created with an Idempotency-Key, deleted or not.
func replay(db *gorm.DB, in NewOrder) (order.Order, bool, error) {
	var r orderRow
	err := db.Unscoped().Preload("Items", byPosition).
		Where("user_id = ? AND idempotency_key = ?", in.UserID, in.IdempotencyKey).Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return order.Order{}, false, nil
	case err != nil:
		return order.Order{}, false, err
	case r.RequestHash != order.Fingerprint(in.Lines):
		return order.Order{}, false, order.ErrIdempotencyMismatch
	case r.DeletedAt.Valid:
		return order.Order{}, false, order.ErrIdempotencyGone
	}
	return r.domain(), true, nil
}

func byPosition(db *gorm.DB) *gorm.DB { return db.Order("position") }

// Order returns an order that has not been deleted.
func (s *Store) Order(ctx context.Context, id string) (order.Order, error) {
	return loadOrder(s.db.WithContext(ctx), id)
}

func loadOrder(db *gorm.DB, id string) (order.Order, error) {
	if !order.ValidID(id) {
		return order.Order{}, order.ErrNotFound
	}
	var r orderRow
	err := db.Preload("Items", byPosition).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return order.Order{}, order.ErrNotFound
	}
	if err != nil {
		return order.Order{}, err
	}
	return r.domain(), nil
}

// Deleted reports whether id names an order that has been deleted. Reads leave deleted
// orders out; the payment service's reports about one need to tell it from an unknown id.
func (s *Store) Deleted(ctx context.Context, id string) (bool, error) {
	if !order.ValidID(id) {
		return false, nil
	}
	var n int64
	err := s.db.WithContext(ctx).Unscoped().Model(&orderRow{}).Where("id = ? AND deleted_at IS NOT NULL", id).Count(&n).Error
	return n > 0, err
}

// OrdersOf lists one user's orders, newest first. The owner is part of the query itself,
// so no later filtering step can forget it.
func (s *Store) OrdersOf(ctx context.Context, userID string, p Page) ([]order.Order, error) {
	if userID == "" {
		return nil, errors.New("store: OrdersOf needs an owner")
	}
	return listOrders(p.apply(s.db.WithContext(ctx)).Where("user_id = ?", userID))
}

// Filter narrows the list of all orders; zero fields do not filter.
type Filter struct {
	Status order.Status
	// Customer is a username, matched exactly.
	Customer string
	// Number is an order number (order.Order.Number).
	Number int64
}

// AllOrders lists every user's orders, newest first, for admins.
func (s *Store) AllOrders(ctx context.Context, f Filter, p Page) ([]order.Order, error) {
	db := p.apply(s.db.WithContext(ctx))
	if f.Status != "" {
		db = db.Where("status = ?", string(f.Status))
	}
	if f.Customer != "" {
		db = db.Where("customer = ?", f.Customer)
	}
	if f.Number != 0 {
		db = db.Where("number = ?", f.Number)
	}
	return listOrders(db)
}

func listOrders(db *gorm.DB) ([]order.Order, error) {
	var rows []orderRow
	if err := db.Preload("Items", byPosition).Order("created_at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]order.Order, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// CancelOrder moves a pending order to cancelled and puts its items back in stock, in one
// transaction. Any other status is order.ErrInvalidTransition.
func (s *Store) CancelOrder(ctx context.Context, id string) (o order.Order, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := cancel(tx, id); err != nil {
			return err
		}
		o, err = loadOrder(tx, id)
		return err
	})
	return o, err
}

// cancel is the compare-and-set of pending -> cancelled plus the stock release. The status
// condition is in the UPDATE itself: of a cancel and a payment racing, exactly one wins.
func cancel(tx *gorm.DB, id string) error {
	if err := moveStatus(tx, id, order.StatusPending, order.StatusCancelled, map[string]any{
		"cancel_reason": string(order.CancelRequested),
	}); err != nil {
		return err
	}
	return release(tx, id)
}

// release puts a cancelled order's items back in stock. Its callers run it in the
// transaction whose compare-and-set cancelled the order, so it runs once per order.
func release(tx *gorm.DB, id string) error {
	var items []orderItemRow
	if err := tx.Where("order_id = ?", id).Find(&items).Error; err != nil {
		return err
	}
	for _, it := range items {
		if err := tx.Model(&productRow{}).Where("id = ?", it.ProductID).
			UpdateColumn("stock", gorm.Expr("stock + ?", it.Quantity)).Error; err != nil {
			return err
		}
	}
	return nil
}

// moveStatus sets an order's status from `from` to `to` (with extra columns) only if it is
// still `from`; otherwise it says why not: no such order, or the transition error for
// the status it has now.
func moveStatus(tx *gorm.DB, id string, from, to order.Status, extra map[string]any) error {
	if !from.CanBecome(to) {
		return order.TransitionError(from, to)
	}
	set := map[string]any{"status": string(to)}
	for k, v := range extra {
		set[k] = v
	}
	res := tx.Model(&orderRow{}).Where("id = ? AND status = ?", id, string(from)).Updates(set)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	now, err := loadOrder(tx, id)
	if err != nil {
		return err
	}
	return order.TransitionError(now.Status, to)
}

// StartPaymentAttempt records that the order's current charge attempt is being sent to the
// payment service now. Until the attempt ends (MarkPaid, NextPaymentAttempt) the order
// awaits its payment's outcome: if the checkout never learns it (a timeout, or this
// service stopping between charge and update), reconciliation asks the payment service
// after a grace period (AwaitingPayment). Only a pending order can start an attempt; any
// other is order.ErrInvalidTransition, so it is never sent to be charged. So is an order
// past its payment deadline (order.ErrExpired): the condition is in the UPDATE, the
// inverse of ExpireOverdue's, so of an expiry and a checkout at the same moment exactly
// one wins, and an attempt once started keeps the order until it ends.
func (s *Store) StartPaymentAttempt(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := database.Now()
		res := tx.Model(&orderRow{}).Where("id = ? AND status = ?", id, string(order.StatusPending)).
			Where("payment_started_at IS NOT NULL OR payment_due_at IS NULL OR payment_due_at > ?", now).
			UpdateColumn("payment_started_at", now)
		if res.Error != nil || res.RowsAffected == 1 {
			return res.Error
		}
		cur, err := loadOrder(tx, id)
		switch {
		case err != nil:
			return err
		case cur.Expired() || cur.Overdue(now):
			return order.ErrExpired
		}
		return order.TransitionError(cur.Status, order.StatusPaid)
	})
}

// MarkPaid records an approved payment: pending -> paid with its payment id, only if the
// order is still pending, and the attempt is over. An order cancelled while the charge was
// in flight is order.ErrInvalidTransition (the payment must then be refunded). An order
// this payment already paid (refunded since or not) is returned as it is with changed
// false: the checkout, the payment service's notice and reconciliation may all report the
// same approval, and only the first one changes anything.
func (s *Store) MarkPaid(ctx context.Context, id, paymentID string) (o order.Order, changed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := moveStatus(tx, id, order.StatusPending, order.StatusPaid, map[string]any{
			"payment_id": paymentID, "payment_started_at": nil,
		})
		if errors.Is(err, order.ErrInvalidTransition) {
			if cur, lerr := loadOrder(tx, id); lerr == nil && cur.PaymentID == paymentID &&
				(cur.Status == order.StatusPaid || cur.Status == order.StatusRefunded) {
				o = cur
				return nil
			}
		}
		if err != nil {
			return err
		}
		changed = true
		o, err = loadOrder(tx, id)
		return err
	})
	return o, changed, err
}

// SettlePaid records an approved payment the checkout did not record (MarkPaid) and, when
// that changed the order, writes entry to the audit log in the same transaction: a
// settlement happens once, however many reports of it arrive, and is audited once.
func (s *Store) SettlePaid(ctx context.Context, id, paymentID string, entry order.AuditEntry) (o order.Order, changed bool, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		if o, changed, err = tx.MarkPaid(ctx, id, paymentID); err != nil || !changed {
			return err
		}
		return tx.Audit(ctx, entry)
	})
	return o, changed, err
}

// NextPaymentAttempt moves the order on from payment attempt `after` once that attempt
// ended for good without a charge (declined, failed at the processor, refused as invalid),
// so the next charge goes out under a new Idempotency-Key. It is a compare-and-set on the
// attempt: the same outcome reported twice moves it once.
func (s *Store) NextPaymentAttempt(ctx context.Context, id string, after int) error {
	return s.db.WithContext(ctx).Model(&orderRow{}).
		Where("id = ? AND status = ? AND payment_attempts = ?", id, string(order.StatusPending), after).
		UpdateColumns(map[string]any{"payment_attempts": gorm.Expr("payment_attempts + 1"), "payment_started_at": nil}).Error
}

// AwaitingPayment lists up to limit pending orders whose charge attempt started at or
// before startedBefore and has not ended, oldest attempt first: the orders reconciliation
// settles.
func (s *Store) AwaitingPayment(ctx context.Context, startedBefore time.Time, limit int) ([]order.Order, error) {
	db := s.db.WithContext(ctx).
		Where("status = ? AND payment_started_at IS NOT NULL AND payment_started_at <= ?", string(order.StatusPending), startedBefore.UTC()).
		Order("payment_started_at, id").Limit(limit)
	var rows []orderRow
	if err := db.Preload("Items", byPosition).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]order.Order, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// CloseStalledAttempt ends a charge attempt that reconciliation found charged nothing
// (declined, failed, or never reached the payment service), so the shopper can pay again
// under a new Idempotency-Key. It is a compare-and-set on the attempt and on its start:
// closed only while the order is still pending on attempt `attempt`, started at or before
// startedBefore. A concurrent reconciliation, an outcome the checkout recorded meanwhile
// or a checkout that sent the attempt again since all leave it alone; closed reports
// whether this call closed it.
func (s *Store) CloseStalledAttempt(ctx context.Context, id string, attempt int, startedBefore time.Time) (closed bool, err error) {
	res := s.db.WithContext(ctx).Model(&orderRow{}).
		Where("id = ? AND status = ? AND payment_attempts = ? AND payment_started_at IS NOT NULL AND payment_started_at <= ?",
			id, string(order.StatusPending), attempt, startedBefore.UTC()).
		UpdateColumns(map[string]any{"payment_attempts": gorm.Expr("payment_attempts + 1"), "payment_started_at": nil})
	return res.RowsAffected == 1, res.Error
}

// DeleteOrder soft-deletes an order: it disappears from every read but stays in the
// database for the books. Its owner may delete it only while pending or cancelled
// (order.CheckDeletable); an admin any. A pending order is cancelled first, so its stock
// goes back on the shelf. It returns the order as it was before (for the audit log).
func (s *Store) DeleteOrder(ctx context.Context, id string, byAdmin bool) (o order.Order, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if o, err = loadOrder(tx, id); err != nil {
			return err
		}
		if err := o.CheckDeletable(byAdmin); err != nil {
			return err
		}
		status := o.Status
		if status == order.StatusPending {
			if err := cancel(tx, id); err != nil {
				return err
			}
			status = order.StatusCancelled
		}
		// The status seen is part of the condition: an order paid meanwhile is not deleted
		// on the strength of a check made while it was pending.
		res := tx.Where("id = ? AND status = ?", id, string(status)).Delete(&orderRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return order.ErrConcurrentUpdate
		}
		return nil
	})
	return o, err
}

// RecordRefund applies the payment service's report that refundedTotal of the order's
// payment has been refunded (see order.Order.ApplyRefund). changed is false when the report
// was already known.
func (s *Store) RecordRefund(ctx context.Context, id, paymentID string, refundedTotal int64, fully bool) (o order.Order, changed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if o, err = loadOrder(tx, id); err != nil {
			return err
		}
		was := o
		if changed, err = o.ApplyRefund(paymentID, refundedTotal, fully); err != nil || !changed {
			return err
		}
		res := tx.Model(&orderRow{}).
			Where("id = ? AND status = ? AND refunded_amount = ?", id, string(was.Status), was.Refunded.Amount).
			Updates(map[string]any{"status": string(o.Status), "refunded_amount": o.Refunded.Amount})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return order.ErrConcurrentUpdate
		}
		o, err = loadOrder(tx, id)
		return err
	})
	return o, changed, err
}
