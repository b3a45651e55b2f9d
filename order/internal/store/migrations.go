package store

import (
	"context"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"example.com/shop/platform/database"
)

// migrations is the schema's history, oldest first. A migration is never edited once it
// has shipped: a change is a new migration. Each one works on its own frozen copies of the
// tables (the *V1 types below), never on the live row types of models.go, so a later
// change to a live type cannot rewrite what an old migration does to a database that
// still has to go through it.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{
			ID: "202607010001_initial_schema",
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&productV1{}, &orderV1{}, &orderItemV1{}, &auditEntryV1{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable(&auditEntryV1{}, &orderItemV1{}, &orderV1{}, &productV1{})
			},
		},
		{
			ID: "202607010002_seed_catalog",
			Migrate: func(tx *gorm.DB) error {
				at := database.Now()
				seed := seedCatalogV1()
				for i := range seed {
					seed[i].CreatedAt, seed[i].UpdatedAt = at, at
				}
				return tx.Create(&seed).Error
			},
			Rollback: func(tx *gorm.DB) error {
				var ids []string
				for _, p := range seedCatalogV1() {
					ids = append(ids, p.ID)
				}
				return tx.Where("id IN ?", ids).Delete(&productV1{}).Error
			},
		},
		{
			// Issue 6: when a charge attempt went out, so that reconciliation can find the
			// orders whose checkout never learned the outcome.
			ID: "202607100003_payment_started_at",
			Migrate: func(tx *gorm.DB) error {
				if err := tx.Migrator().AddColumn(&orderV3{}, "PaymentStartedAt"); err != nil {
					return err
				}
				return tx.Migrator().CreateIndex(&orderV3{}, "idx_orders_payment_started")
			},
			Rollback: func(tx *gorm.DB) error {
				if err := tx.Migrator().DropIndex(&orderV3{}, "idx_orders_payment_started"); err != nil {
					return err
				}
				return tx.Migrator().DropColumn(&orderV3{}, "PaymentStartedAt")
			},
		},
		{
			// Issue 19: a per-shop order number that people can read out and search by. UUIDv7
			// ids begin with their timestamp, so orders of the same minute looked alike.
			ID:       "20261204_2001_order_numbers",
			Migrate:  migrateOrderNumbers,
			Rollback: rollbackOrderNumbers,
		},
		{
			// Issue 19: the admin console filters the audit log by who acted.
			ID: "20261204_2002_audit_actor_index",
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateIndex(&auditEntryV2002{}, "idx_audit_log_actor")
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropIndex(&auditEntryV2002{}, "idx_audit_log_actor")
			},
		},
		{
			// Issue 19: unpaid orders expire. When each order's payment hold ends, and why
			// a cancelled order was cancelled (its shopper, or the clock).
			ID:       "20261204_1001_payment_hold",
			Migrate:  migratePaymentHold,
			Rollback: rollbackPaymentHold,
		},
	}
}

// newMigrator runs this binary's migrations on db, recording them in schema_migrations.
func newMigrator(db *gorm.DB) *gormigrate.Gormigrate {
	return gormigrate.New(db, &gormigrate.Options{
		TableName:                 "schema_migrations",
		IDColumnName:              "id",
		IDColumnSize:              255,
		ValidateUnknownMigrations: true,
	}, migrations())
}

// migrate runs the migrations not yet applied, in one transaction. On PostgreSQL an
// advisory lock held by that transaction makes replicas that start together take turns:
// the second finds the work done. (SQLite's immediate transactions serialise the same way.)
// A database that knows a migration this binary does not is refused: an older release
// must not run against a newer schema.
func (s *Store) migrate(ctx context.Context, driver string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if driver == DriverPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return err
			}
		}
		return newMigrator(tx).Migrate()
	})
	if err != nil {
		return fmt.Errorf("store: migrating the schema: %w", err)
	}
	return nil
}

// migrationLockID names the order service's migration lock among PostgreSQL advisory locks.
const migrationLockID = 0x0bde7001

// The schema as migration 202607010001 created it.

type productV1 struct {
	ID            string    `gorm:"primaryKey;size:36"`
	Name          string    `gorm:"size:100;not null"`
	Description   string    `gorm:"size:2000;not null"`
	PriceAmount   int64     `gorm:"not null;check:chk_products_price,price_amount > 0"`
	PriceCurrency string    `gorm:"size:3;not null"`
	Stock         int       `gorm:"not null;check:chk_products_stock,stock >= 0"`
	Active        bool      `gorm:"not null;index"`
	CreatedAt     time.Time `gorm:"not null"`
	UpdatedAt     time.Time `gorm:"not null"`
}

func (productV1) TableName() string { return "products" }

type orderV1 struct {
	ID     string `gorm:"primaryKey;size:36"`
	UserID string `gorm:"size:255;not null;index:idx_orders_user_created,priority:1;uniqueIndex:idx_orders_user_idempotency,priority:1"`
	// IdempotencyKey is NULL for orders created without one; NULLs never collide in a
	// unique index, on SQLite as on PostgreSQL.
	IdempotencyKey  *string    `gorm:"size:128;uniqueIndex:idx_orders_user_idempotency,priority:2"`
	RequestHash     string     `gorm:"size:64;not null"`
	Customer        string     `gorm:"size:255;not null;index"`
	Status          string     `gorm:"size:16;not null;index;check:chk_orders_status,status IN ('pending', 'paid', 'cancelled', 'refunded')"`
	Currency        string     `gorm:"size:3;not null"`
	TotalAmount     int64      `gorm:"not null;check:chk_orders_total,total_amount > 0"`
	RefundedAmount  int64      `gorm:"not null;check:chk_orders_refunded,refunded_amount >= 0 AND refunded_amount <= total_amount"`
	PaymentID       *string    `gorm:"size:64"`
	PaymentAttempts int        `gorm:"not null"`
	CreatedAt       time.Time  `gorm:"not null;index:idx_orders_user_created,priority:2"`
	UpdatedAt       time.Time  `gorm:"not null"`
	DeletedAt       *time.Time `gorm:"index"`
}

func (orderV1) TableName() string { return "orders" }

type orderItemV1 struct {
	OrderID         string `gorm:"primaryKey;size:36"`
	Position        int    `gorm:"primaryKey;autoIncrement:false"`
	ProductID       string `gorm:"size:36;not null;index"`
	Name            string `gorm:"size:100;not null"`
	Currency        string `gorm:"size:3;not null"`
	UnitPriceAmount int64  `gorm:"not null"`
	Quantity        int    `gorm:"not null;check:chk_order_items_quantity,quantity > 0"`
	LineTotalAmount int64  `gorm:"not null"`

	// Relations, only so that CreateTable writes the foreign keys.
	Order   *orderV1   `gorm:"foreignKey:OrderID;constraint:OnDelete:CASCADE"`
	Product *productV1 `gorm:"foreignKey:ProductID;constraint:OnDelete:RESTRICT"`
}

func (orderItemV1) TableName() string { return "order_items" }

type auditEntryV1 struct {
	ID            int64     `gorm:"primaryKey;autoIncrement"`
	At            time.Time `gorm:"not null;index"`
	ActorSubject  string    `gorm:"size:255;not null"`
	ActorUsername string    `gorm:"size:255;not null"`
	Action        string    `gorm:"size:64;not null;index"`
	TargetID      string    `gorm:"size:64;not null;index"`
	Details       string    `gorm:"type:text;not null"`
	RequestID     string    `gorm:"size:128;not null"`
}

func (auditEntryV1) TableName() string { return "audit_log" }

// orderV3 is what migration 202607100003 adds to the orders table.
type orderV3 struct {
	PaymentStartedAt *time.Time `gorm:"index:idx_orders_payment_started"`
}

func (orderV3) TableName() string { return "orders" }

// orderNumberV2001 is what migration 20261204_2001 adds to the orders table.
type orderNumberV2001 struct {
	Number *int64 `gorm:"uniqueIndex:idx_orders_number"`
}

func (orderNumberV2001) TableName() string { return "orders" }

// auditEntryV2002 is the index migration 20261204_2002 adds to the audit log.
type auditEntryV2002 struct {
	ActorUsername string `gorm:"index:idx_audit_log_actor"`
}

func (auditEntryV2002) TableName() string { return "audit_log" }

// firstOrderNumber is the number of a shop's first order: five digits from the start,
// so a number reads as an order number rather than as a count.
const firstOrderNumber = 10001

// orderNumberSequence hands out order numbers on PostgreSQL (nextOrderNumber).
const orderNumberSequence = "order_numbers"

// migrateOrderNumbers adds orders.number and numbers the existing orders, deleted ones
// included, in the order they were created. On PostgreSQL a sequence then continues after
// the highest number; SQLite needs none (see nextOrderNumber).
func migrateOrderNumbers(tx *gorm.DB) error {
	if err := tx.Migrator().AddColumn(&orderNumberV2001{}, "Number"); err != nil {
		return err
	}
	// UPDATE ... FROM and window functions: PostgreSQL, and SQLite since 3.33.
	err := tx.Exec(`UPDATE orders SET number = ranked.number
		FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) + ? AS number FROM orders) AS ranked
		WHERE orders.id = ranked.id`, firstOrderNumber-1).Error
	if err != nil {
		return err
	}
	if err := tx.Migrator().CreateIndex(&orderNumberV2001{}, "idx_orders_number"); err != nil {
		return err
	}
	if tx.Dialector.Name() != DriverPostgres {
		return nil
	}
	if err := tx.Exec("CREATE SEQUENCE " + orderNumberSequence + " AS bigint").Error; err != nil {
		return err
	}
	// setval's value is the last one handed out: the next order gets the one after it.
	return tx.Exec("SELECT setval(?, (SELECT COALESCE(MAX(number), ?) FROM orders))",
		orderNumberSequence, firstOrderNumber-1).Error
}

func rollbackOrderNumbers(tx *gorm.DB) error {
	if tx.Dialector.Name() == DriverPostgres {
		if err := tx.Exec("DROP SEQUENCE IF EXISTS " + orderNumberSequence).Error; err != nil {
			return err
		}
	}
	if err := tx.Migrator().DropIndex(&orderNumberV2001{}, "idx_orders_number"); err != nil {
		return err
	}
	return tx.Migrator().DropColumn(&orderNumberV2001{}, "Number")
}

// seedCatalogV1 is the catalog a new shop opens with, so it is never empty. Its ids are
// fixed, so demos and end-to-end tests can name a product.
func seedCatalogV1() []productV1 {
	p := func(id, name, desc string, cents int64, stock int) productV1 {
		return productV1{ID: id, Name: name, Description: desc, PriceAmount: cents, PriceCurrency: "EUR", Stock: stock, Active: true}
	}
	return []productV1{
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d01", "Stoneware Coffee Mug",
			"Hand-glazed, 350 ml, in a speckled oat colour. Dishwasher safe.", 1800, 40),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02", "Linen Tea Towel",
			"Stonewashed European linen, 50 x 70 cm, gets softer with every wash.", 1290, 60),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d03", "Beeswax Pillar Candle",
			"Pure beeswax, cotton wick, about 40 hours of warm honey-scented light.", 2450, 25),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d04", "Olive Wood Serving Board",
			"One piece of olive wood, 40 cm, oiled by hand. Every grain is different.", 3900, 15),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d05", "Dotted A5 Notebook",
			"192 pages of 100 g paper that fountain pens love, lay-flat binding.", 1450, 100),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d06", "Merino Wool Throw",
			"Soft merino blanket, 130 x 180 cm, woven in Portugal.", 8900, 8),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d07", "Single-Origin Coffee Beans",
			"250 g of washed Ethiopian beans with notes of jasmine and peach.", 1150, 80),
		p("0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d08", "Signed Risograph Print",
			"A3 print of the shop's lighthouse, numbered and signed. A small edition.", 4500, 3),
	}
}
