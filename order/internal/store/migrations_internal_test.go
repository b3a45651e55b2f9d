package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/database"
)

// TestOrderNumbersMigrationNumbersExistingOrdersInCreationOrder upgrades a database from
// the release before order numbers: its orders, deleted ones included, are numbered in the
// order they were placed (not in id order), and the next new order continues after them.
func TestOrderNumbersMigrationNumbersExistingOrdersInCreationOrder(t *testing.T) {
	ctx := t.Context()
	cfg := database.Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "order.db")}
	db, err := database.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	// The same options as Store.migrate, so that the full migration below continues this one.
	old := gormigrate.New(db, &gormigrate.Options{TableName: "schema_migrations", IDColumnName: "id", IDColumnSize: 255}, migrations())
	if err := old.MigrateTo("202607100003_payment_started_at"); err != nil {
		t.Fatal(err)
	}

	// Ids in the opposite order of placement, so only created_at can give the right order.
	base := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	placed := []struct {
		id      string
		at      time.Time
		deleted bool
	}{
		{"ffffffff-0000-4000-8000-000000000001", base, false},
		{"eeeeeeee-0000-4000-8000-000000000002", base.Add(time.Second), true},
		{"dddddddd-0000-4000-8000-000000000003", base.Add(2 * time.Second), false},
	}
	for i := len(placed) - 1; i >= 0; i-- { // inserted newest first
		p := placed[i]
		row := orderV1{ID: p.id, UserID: "alice", Customer: "alice", RequestHash: "h", Status: "cancelled",
			Currency: "EUR", TotalAmount: 100, CreatedAt: p.at, UpdatedAt: p.at}
		if p.deleted {
			row.DeletedAt = &p.at
		}
		if err := db.Create(&row).Error; err != nil {
			t.Fatal(err)
		}
	}

	s := &Store{db: db}
	if err := s.migrate(ctx, cfg.Driver); err != nil {
		t.Fatal(err)
	}
	for i, p := range placed {
		var n int64
		if err := db.Raw("SELECT number FROM orders WHERE id = ?", p.id).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if want := int64(firstOrderNumber + i); n != want {
			t.Errorf("order placed %s: number %d, want %d", p.at.Format(time.TimeOnly), n, want)
		}
	}
	o, _, err := s.CreateOrder(ctx, NewOrder{UserID: "bob", Lines: []order.Line{{ProductID: "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(firstOrderNumber + len(placed)); o.Number != want {
		t.Fatalf("first order after the upgrade: number %d, want %d", o.Number, want)
	}
}
