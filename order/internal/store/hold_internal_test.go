package store

import (
	"testing"
	"time"

	"example.com/shop/order/internal/order"
)

// TestPaymentHoldMigrationGivesOrdersInFlightAFairDeadline upgrades a database from the
// release before payment holds: orders already pending get the default hold counted from
// the upgrade (not from when they were placed, which could expire them at once), cancelled
// ones the reason "requested", and the others nothing.
func TestPaymentHoldMigrationGivesOrdersInFlightAFairDeadline(t *testing.T) {
	ctx := t.Context()
	s := storeMigratedTo(t, "20261204_2002_audit_actor_index")
	db := s.db
	placed := time.Now().Add(-30 * 24 * time.Hour).UTC()
	for id, status := range map[string]string{
		"aaaaaaaa-0000-4000-8000-000000000001": "pending",
		"bbbbbbbb-0000-4000-8000-000000000002": "cancelled",
		"cccccccc-0000-4000-8000-000000000003": "paid",
	} {
		row := orderV1{ID: id, UserID: "alice", Customer: "alice", RequestHash: "h", Status: status,
			Currency: "EUR", TotalAmount: 100, CreatedAt: placed, UpdatedAt: placed}
		if err := db.Create(&row).Error; err != nil {
			t.Fatal(err)
		}
	}

	before := time.Now().Truncate(time.Microsecond)
	if err := s.migrate(ctx, DriverSQLite); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	pending, err := s.Order(ctx, "aaaaaaaa-0000-4000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if due := pending.PaymentDueAt; due.Before(before.Add(holdOfExistingOrdersV1001)) || due.After(after.Add(holdOfExistingOrdersV1001)) {
		t.Fatalf("a pending order placed a month ago is due %v, want %v after the upgrade (%v)", due, holdOfExistingOrdersV1001, before)
	}
	if expired, err := s.ExpireOverdue(ctx, time.Now(), 10, func(o order.Order) order.AuditEntry {
		return order.AuditEntry{Action: order.ActionOrderExpire, TargetID: o.ID}
	}); err != nil || len(expired) != 0 {
		t.Fatalf("right after the upgrade: %d expired, %v", len(expired), err)
	}
	cancelled, err := s.Order(ctx, "bbbbbbbb-0000-4000-8000-000000000002")
	if err != nil || cancelled.CancelReason != order.CancelRequested || !cancelled.PaymentDueAt.IsZero() {
		t.Fatalf("a cancelled order after the upgrade: %+v, %v", cancelled, err)
	}
	paid, err := s.Order(ctx, "cccccccc-0000-4000-8000-000000000003")
	if err != nil || paid.CancelReason != "" || !paid.PaymentDueAt.IsZero() {
		t.Fatalf("a paid order after the upgrade: %+v, %v", paid, err)
	}
}
