package store

import (
	"path/filepath"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/database"
)

// TestOrderNumbersMigrationNumbersExistingOrdersInCreationOrder upgrades a database from
// the release before order numbers: its orders, deleted ones included, are numbered in the
// order they were placed (not in id order), and the next new order continues after them.
func TestOrderNumbersMigrationNumbersExistingOrdersInCreationOrder(t *testing.T) {
	ctx := t.Context()
	s := storeMigratedTo(t, "202607100003_payment_started_at")
	db := s.db

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

	if err := s.migrate(ctx, DriverSQLite); err != nil {
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

// storeMigratedTo is a store on a new SQLite database whose schema stops at the migration
// id, as a database of an older release would: the test puts that release's rows in, then
// runs the rest with Store.migrate.
func storeMigratedTo(t *testing.T, id string) *Store {
	t.Helper()
	db, err := database.Open(t.Context(), database.Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "order.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	if err := newMigrator(db).MigrateTo(id); err != nil {
		t.Fatal(err)
	}
	return &Store{db: db}
}
