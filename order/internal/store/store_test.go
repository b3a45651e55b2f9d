package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite", to tamper with a database behind the store's back
	"github.com/google/uuid"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"

	"example.com/shop/platform/validation"
)

// The store contract: every test runs on a fresh SQLite database, and again on PostgreSQL
// when SHOP_TEST_POSTGRES_DSN names a server (the end-to-end suite sets it). The SQLite
// run is the test; PostgreSQL proves the same rules hold under real concurrency.

const postgresEnv = "SHOP_TEST_POSTGRES_DSN"

type backend struct {
	name string
	cfg  func(t *testing.T) store.Config
}

func backends() []backend {
	bs := []backend{{name: "sqlite", cfg: func(t *testing.T) store.Config {
		return store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "order.db")}
	}}}
	if dsn := os.Getenv(postgresEnv); dsn != "" {
		bs = append(bs, backend{name: "postgres", cfg: func(t *testing.T) store.Config {
			return store.Config{Driver: store.DriverPostgres, DSN: freshSchema(t, dsn)}
		}})
	}
	return bs
}

// freshSchema creates a schema of its own for one test on the PostgreSQL server and
// returns a DSN that uses it, so tests never see each other's rows.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	schema := "order_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if db, err := admin.DB(); err == nil {
			db.Close()
		}
	})
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + schema
	}
	return dsn + " search_path=" + schema
}

// contract runs test on every backend, each with a freshly migrated store.
func contract(t *testing.T, test func(t *testing.T, s *store.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), b.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			test(t, s)
		})
	}
}

var ctx = context.Background()

// The seed catalog's ids (migration 202607010002).
const (
	mug   = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d01"
	towel = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02"
)

func product(t *testing.T, s *store.Store, id string) order.Product {
	t.Helper()
	p, err := s.Product(ctx, id)
	if err != nil {
		t.Fatalf("product %s: %v", id, err)
	}
	return p
}

// stocked creates an active product with the given stock and price.
func stocked(t *testing.T, s *store.Store, stock int, cents int64) order.Product {
	t.Helper()
	p, err := s.CreateProduct(ctx, order.ProductInput{Name: "Test item " + uuid.NewString()[:8], Price: order.EUR(cents), Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func create(t *testing.T, s *store.Store, user string, lines ...order.Line) order.Order {
	t.Helper()
	o, replayed, err := s.CreateOrder(ctx, store.NewOrder{UserID: user, Customer: user + "-name", Lines: lines})
	if err != nil || replayed {
		t.Fatalf("create order: %v (replayed %v)", err, replayed)
	}
	return o
}

func TestSeedCatalogLoadsOnceAndStaysLoaded(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		ps, err := s.Products(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) < 6 || len(ps) > 8 {
			t.Fatalf("seed catalog has %d products, want 6 to 8", len(ps))
		}
		for _, p := range ps {
			if !p.Active || p.Price.Currency != "EUR" || p.Price.Amount <= 0 || p.Stock <= 0 || p.Name == "" || p.Description == "" {
				t.Errorf("seed product %+v", p)
			}
		}
	})
}

func TestReopenKeepsDataAndRunsNoMigrationTwice(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.cfg(t)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RetireProduct(ctx, mug); err != nil {
				t.Fatal(err)
			}
			o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 2})
			s.Close()

			s, err = store.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("reopening an up-to-date database: %v", err)
			}
			defer s.Close()
			if _, err := s.Product(ctx, mug); !errors.Is(err, order.ErrProductNotFound) {
				t.Fatalf("the seed migration ran again and brought back a retired product: %v", err)
			}
			if got, err := s.Order(ctx, o.ID); err != nil || got.Total != o.Total {
				t.Fatalf("order after reopening: %+v, %v", got, err)
			}
		})
	}
}

func TestOpenRefusesADatabaseFromANewerRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "order.db")
	s, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO schema_migrations (id) VALUES ('209912310001_from_the_future')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: path}); err == nil {
		s.Close()
		t.Fatal("opened a database migrated by a newer release")
	}
}

func TestOpenRefusesAnUnknownDriver(t *testing.T) {
	if _, err := store.Open(ctx, store.Config{Driver: "mysql", DSN: "x"}); err == nil {
		t.Fatal("accepted driver mysql")
	}
}

func TestProductLifecycle(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p, err := s.CreateProduct(ctx, order.ProductInput{Name: "Teapot", Description: "Cast iron", Price: order.EUR(4200), Stock: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !order.ValidID(p.ID) || !p.Active || p.CreatedAt.IsZero() {
			t.Fatalf("created %+v", p)
		}
		if got := product(t, s, p.ID); got != p {
			t.Fatalf("read back %+v, want %+v", got, p)
		}

		inactive := false
		before, after, err := s.UpdateProduct(ctx, p.ID, order.ProductInput{Name: "Teapot XL", Price: order.EUR(5200), Stock: 0, Active: &inactive})
		if err != nil {
			t.Fatal(err)
		}
		if before != p || after.Name != "Teapot XL" || after.Price.Amount != 5200 || after.Stock != 0 || after.Active || after.Description != "" {
			t.Fatalf("update: before %+v after %+v", before, after)
		}
		if _, err := s.Product(ctx, p.ID); !errors.Is(err, order.ErrProductNotFound) {
			t.Fatalf("an inactive product is still in the catalog: %v", err)
		}

		active := true
		if _, _, err := s.UpdateProduct(ctx, p.ID, order.ProductInput{Name: "Teapot XL", Price: order.EUR(5200), Stock: 3, Active: &active}); err != nil {
			t.Fatal(err)
		}
		if changed, err := s.RetireProduct(ctx, p.ID); err != nil || !changed {
			t.Fatalf("retire: %v, %v", changed, err)
		}
		if changed, err := s.RetireProduct(ctx, p.ID); err != nil || changed {
			t.Fatalf("retiring twice: changed %v, %v", changed, err)
		}
		ps, _ := s.Products(ctx)
		for _, q := range ps {
			if q.ID == p.ID {
				t.Fatal("a retired product is listed")
			}
		}
		for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
			if _, err := s.RetireProduct(ctx, id); !errors.Is(err, order.ErrProductNotFound) {
				t.Errorf("retire %q: %v", id, err)
			}
			if _, _, err := s.UpdateProduct(ctx, id, order.ProductInput{Name: "x", Price: order.EUR(1)}); !errors.Is(err, order.ErrProductNotFound) {
				t.Errorf("update %q: %v", id, err)
			}
		}
	})
}

func TestCreateOrderPricesFromTheCatalogAndReservesStock(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		m, tw := product(t, s, mug), product(t, s, towel)
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 3}, order.Line{ProductID: mug, Quantity: 1})
		if o.UserID != "alice" || o.Customer != "alice-name" || o.Status != order.StatusPending || o.PaymentAttempts != 0 {
			t.Fatalf("order %+v", o)
		}
		want := order.EUR(3*tw.Price.Amount + m.Price.Amount)
		if o.Total != want || o.Refunded != order.EUR(0) {
			t.Fatalf("total %+v refunded %+v, want %+v and 0", o.Total, o.Refunded, want)
		}
		if len(o.Items) != 2 || o.Items[0].ProductID != towel || o.Items[0].Name != tw.Name ||
			o.Items[0].UnitPrice != tw.Price || o.Items[0].LineTotal != order.EUR(3*tw.Price.Amount) || o.Items[1].ProductID != mug {
			t.Fatalf("items keep request order and catalog prices: %+v", o.Items)
		}
		if got := product(t, s, towel).Stock; got != tw.Stock-3 {
			t.Fatalf("towel stock %d, want %d", got, tw.Stock-3)
		}
		got, err := s.Order(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != o.Total || len(got.Items) != 2 || got.Items[1] != o.Items[1] || !got.CreatedAt.Equal(o.CreatedAt) {
			t.Fatalf("read back %+v, want %+v", got, o)
		}

		// A later price change does not rewrite the order.
		if _, _, err := s.UpdateProduct(ctx, towel, order.ProductInput{Name: "Renamed", Price: order.EUR(1), Stock: 1}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Order(ctx, o.ID); got.Items[0].Name != tw.Name || got.Total != want {
			t.Fatalf("the order changed with the catalog: %+v", got)
		}
	})
}

func TestCreateOrderRefusesUnknownAndRetiredProducts(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		if _, err := s.RetireProduct(ctx, mug); err != nil {
			t.Fatal(err)
		}
		stock := product(t, s, towel).Stock
		_, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: "alice", Lines: []order.Line{
			{ProductID: towel, Quantity: 1}, {ProductID: mug, Quantity: 1}, {ProductID: uuid.NewString(), Quantity: 1},
		}})
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[0].Field != "items[1].productId" || ve.Fields[1].Field != "items[2].productId" {
			t.Fatalf("err %v, want a validation error naming items 1 and 2", err)
		}
		if product(t, s, towel).Stock != stock {
			t.Fatal("a refused order reserved stock")
		}
		assertOrders(t, s, "alice", 0)
	})
}

func TestOutOfStockRollsBackEveryLine(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		few := stocked(t, s, 2, 100)
		towelStock := product(t, s, towel).Stock
		_, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: "alice", Lines: []order.Line{
			{ProductID: towel, Quantity: 5}, {ProductID: few.ID, Quantity: 3},
		}})
		if !errors.Is(err, order.ErrOutOfStock) || !strings.Contains(err.Error(), few.Name) {
			t.Fatalf("err %v, want out of stock naming %q", err, few.Name)
		}
		if product(t, s, towel).Stock != towelStock || product(t, s, few.ID).Stock != 2 {
			t.Fatal("stock of a refused order stayed reserved")
		}
		assertOrders(t, s, "alice", 0)
		// Exactly what is left can still be bought.
		create(t, s, "alice", order.Line{ProductID: few.ID, Quantity: 2})
		if product(t, s, few.ID).Stock != 0 {
			t.Fatal("stock not at zero")
		}
	})
}

func assertOrders(t *testing.T, s *store.Store, user string, want int) []order.Order {
	t.Helper()
	list, err := s.OrdersOf(ctx, user, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != want {
		t.Fatalf("%s has %d orders, want %d", user, len(list), want)
	}
	return list
}

func TestIdempotencyKey(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		stock := product(t, s, towel).Stock
		in := store.NewOrder{UserID: "alice", Customer: "alice", IdempotencyKey: "cart-42",
			Lines: []order.Line{{ProductID: towel, Quantity: 2}, {ProductID: mug, Quantity: 1}}}
		first, replayed, err := s.CreateOrder(ctx, in)
		if err != nil || replayed {
			t.Fatalf("first: %v, replayed %v", err, replayed)
		}
		// The same lines in another order are the same request.
		in.Lines = []order.Line{{ProductID: mug, Quantity: 1}, {ProductID: towel, Quantity: 2}}
		again, replayed, err := s.CreateOrder(ctx, in)
		if err != nil || !replayed || again.ID != first.ID || again.Total != first.Total || len(again.Items) != 2 {
			t.Fatalf("retry: %+v, replayed %v, %v", again, replayed, err)
		}
		if product(t, s, towel).Stock != stock-2 {
			t.Fatal("the retry reserved stock again")
		}
		in.Lines = []order.Line{{ProductID: towel, Quantity: 3}}
		if _, _, err := s.CreateOrder(ctx, in); !errors.Is(err, order.ErrIdempotencyMismatch) {
			t.Fatalf("same key, other lines: %v", err)
		}
		assertOrders(t, s, "alice", 1)

		// Keys are per user: bob's cart-42 is his own.
		bob, replayed, err := s.CreateOrder(ctx, store.NewOrder{UserID: "bob", IdempotencyKey: "cart-42", Lines: []order.Line{{ProductID: towel, Quantity: 2}, {ProductID: mug, Quantity: 1}}})
		if err != nil || replayed || bob.ID == first.ID || bob.UserID != "bob" {
			t.Fatalf("bob's order %+v replayed %v: %v", bob, replayed, err)
		}

		// A key whose order was deleted creates nothing new.
		if _, err := s.DeleteOrder(ctx, first.ID, false); err != nil {
			t.Fatal(err)
		}
		in.Lines = []order.Line{{ProductID: towel, Quantity: 2}, {ProductID: mug, Quantity: 1}}
		if _, _, err := s.CreateOrder(ctx, in); !errors.Is(err, order.ErrIdempotencyGone) {
			t.Fatalf("key of a deleted order: %v", err)
		}
		assertOrders(t, s, "alice", 0)
	})
}

// TestRaceForTheLastItem: shoppers race for a product with one left. Exactly one order is
// created; everyone else is told it is out of stock, and stock never goes below zero.
func TestRaceForTheLastItem(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		last := stocked(t, s, 1, 4500)
		const shoppers = 8
		errs := race(shoppers, func(i int) error {
			_, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: fmt.Sprintf("shopper-%d", i), Lines: []order.Line{{ProductID: last.ID, Quantity: 1}}})
			return err
		})
		var won, lost int
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, order.ErrOutOfStock):
				lost++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if won != 1 || lost != shoppers-1 {
			t.Fatalf("%d won, %d out of stock; want 1 and %d", won, lost, shoppers-1)
		}
		if got := product(t, s, last.ID).Stock; got != 0 {
			t.Fatalf("stock %d, want 0", got)
		}
		all, _ := s.AllOrders(ctx, store.Filter{}, store.Page{})
		if len(all) != 1 {
			t.Fatalf("%d orders, want 1", len(all))
		}
	})
}

// TestConcurrentRetriesCreateOneOrder: a client that fires the same request with the same
// Idempotency-Key several times at once gets one order, reserved once.
func TestConcurrentRetriesCreateOneOrder(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 10, 100)
		ids := make([]string, 6)
		errs := race(len(ids), func(i int) error {
			o, _, err := s.CreateOrder(ctx, store.NewOrder{UserID: "alice", IdempotencyKey: "double-click", Lines: []order.Line{{ProductID: p.ID, Quantity: 4}}})
			ids[i] = o.ID
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if ids[i] != ids[0] {
				t.Fatalf("two orders for one key: %s and %s", ids[0], ids[i])
			}
		}
		if got := product(t, s, p.ID).Stock; got != 6 {
			t.Fatalf("stock %d, want 6 (reserved once)", got)
		}
	})
}

// race runs f n times at once and returns each run's error.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestCancelReleasesStockOnce(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		stock := product(t, s, towel).Stock
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 4})
		got, err := s.CancelOrder(ctx, o.ID)
		if err != nil || got.Status != order.StatusCancelled {
			t.Fatalf("cancel: %+v, %v", got, err)
		}
		if product(t, s, towel).Stock != stock {
			t.Fatal("cancel did not release the stock")
		}
		if _, err := s.CancelOrder(ctx, o.ID); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("cancelling twice: %v", err)
		}
		if product(t, s, towel).Stock != stock {
			t.Fatal("a refused cancel released stock again")
		}
		if _, err := s.CancelOrder(ctx, uuid.NewString()); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("cancel unknown: %v", err)
		}
	})
}

func TestStatusMovesOnlyAlongTheLifecycle(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		paid, changed, err := s.MarkPaid(ctx, o.ID, "pay-1")
		if err != nil || !changed || paid.Status != order.StatusPaid || paid.PaymentID != "pay-1" {
			t.Fatalf("mark paid: %+v, %v, %v", paid, changed, err)
		}
		if again, changed, err := s.MarkPaid(ctx, o.ID, "pay-1"); err != nil || changed || again.Status != order.StatusPaid {
			t.Fatalf("marking paid again with the same payment: %+v, %v, %v", again, changed, err)
		}
		if _, _, err := s.MarkPaid(ctx, o.ID, "pay-2"); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("a second payment: %v", err)
		}
		if _, err := s.CancelOrder(ctx, o.ID); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("cancel a paid order: %v", err)
		}

		c := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if _, err := s.CancelOrder(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.MarkPaid(ctx, c.ID, "pay-3"); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("pay a cancelled order: %v", err)
		}
		if got, _ := s.Order(ctx, c.ID); got.Status != order.StatusCancelled || got.PaymentID != "" {
			t.Fatalf("cancelled order changed: %+v", got)
		}
	})
}

// TestCancelRacesPayment: a cancel and an approved payment arrive together; exactly one
// of them takes effect.
func TestCancelRacesPayment(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		for range 5 {
			o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
			errs := race(2, func(i int) error {
				if i == 0 {
					_, err := s.CancelOrder(ctx, o.ID)
					return err
				}
				_, _, err := s.MarkPaid(ctx, o.ID, "pay-"+o.ID)
				return err
			})
			got, _ := s.Order(ctx, o.ID)
			switch {
			case errs[0] == nil && errors.Is(errs[1], order.ErrInvalidTransition):
				if got.Status != order.StatusCancelled {
					t.Fatalf("cancel won but order is %s", got.Status)
				}
			case errs[1] == nil && errors.Is(errs[0], order.ErrInvalidTransition):
				if got.Status != order.StatusPaid {
					t.Fatalf("payment won but order is %s", got.Status)
				}
			default:
				t.Fatalf("cancel: %v, pay: %v", errs[0], errs[1])
			}
		}
	})
}

func TestNextPaymentAttemptMovesOnce(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		key := o.PaymentKey()
		for range 2 { // the same outcome reported twice moves the attempt once
			if err := s.NextPaymentAttempt(ctx, o.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Order(ctx, o.ID)
		if got.PaymentAttempts != 1 || got.PaymentKey() == key {
			t.Fatalf("attempts %d, key %s (was %s)", got.PaymentAttempts, got.PaymentKey(), key)
		}
	})
}

// TestAPaymentAttemptAwaitsItsOutcome: an order is awaiting a payment outcome from the
// moment its charge goes out until the outcome is recorded, whichever way it ends.
func TestAPaymentAttemptAwaitsItsOutcome(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		awaiting := func() []string {
			t.Helper()
			var ids []string
			for _, o := range must(s.AwaitingPayment(ctx, time.Now().Add(time.Hour), 100)) {
				ids = append(ids, o.ID)
			}
			return ids
		}
		approved := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		declined := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		lost := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1}) // never sent to be charged
		for _, o := range []order.Order{approved, declined, lost} {
			if err := s.StartPaymentAttempt(ctx, o.ID); err != nil {
				t.Fatal(err)
			}
		}
		if got := awaiting(); len(got) != 3 {
			t.Fatalf("awaiting %v, want the three sent", got)
		}
		if got := must(s.AwaitingPayment(ctx, time.Now().Add(-time.Hour), 100)); len(got) != 0 {
			t.Fatalf("attempts younger than the cutoff are listed: %+v", got)
		}
		if got := stored(t, s, lost.ID); got.PaymentStartedAt.IsZero() || time.Since(got.PaymentStartedAt) > time.Minute {
			t.Fatalf("attempt started at %v", got.PaymentStartedAt)
		}
		if _, _, err := s.MarkPaid(ctx, approved.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.NextPaymentAttempt(ctx, declined.ID, 0); err != nil {
			t.Fatal(err)
		}
		if got := awaiting(); len(got) != 1 || got[0] != lost.ID {
			t.Fatalf("awaiting %v, want only the lost one", got)
		}

		cancelled := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if _, err := s.CancelOrder(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.StartPaymentAttempt(ctx, cancelled.ID); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("a cancelled order's attempt: %v", err)
		}
		if err := s.StartPaymentAttempt(ctx, uuid.NewString()); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("an unknown order's attempt: %v", err)
		}
	})
}

// TestConcurrentSettlementsPayOnce: several reports of the same approval (the checkout, the
// payment service's notice, reconciliations) arrive together; the order is paid once, by
// that payment, and the settlement audited once.
func TestConcurrentSettlementsPayOnce(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if err := s.StartPaymentAttempt(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		const n = 6
		changed := make([]bool, n)
		errs := race(n, func(i int) error {
			var err error
			_, changed[i], err = s.SettlePaid(ctx, o.ID, "pay-1", order.AuditEntry{ActorSubject: "order-service",
				Action: order.ActionOrderPaymentSettled, TargetID: o.ID, Details: map[string]any{"attempt": i}})
			return err
		})
		won := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("settlement %d: %v", i, errs[i])
			}
			if changed[i] {
				won++
			}
		}
		got := stored(t, s, o.ID)
		if won != 1 || got.Status != order.StatusPaid || got.PaymentID != "pay-1" || !got.PaymentStartedAt.IsZero() {
			t.Fatalf("%d settlements changed the order, now %+v", won, got)
		}
		if log := must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{})); len(log) != 1 {
			t.Fatalf("%d audit entries, want 1", len(log))
		}
		if _, _, err := s.SettlePaid(ctx, o.ID, "pay-2", order.AuditEntry{Action: order.ActionOrderPaymentSettled}); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("another payment for a paid order: %v", err)
		}
		if len(must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{}))) != 1 {
			t.Fatal("a refused settlement was audited")
		}
	})
}

// TestConcurrentClosesMoveTheAttemptOnce: two reconciliations close the same stalled
// attempt together; it moves on by one. An attempt sent again after the cutoff, or one
// that already moved on, is left alone.
func TestConcurrentClosesMoveTheAttemptOnce(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if err := s.StartPaymentAttempt(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		cutoff := time.Now().Add(time.Second)
		closed := make([]bool, 4)
		errs := race(len(closed), func(i int) error {
			var err error
			closed[i], err = s.CloseStalledAttempt(ctx, o.ID, 0, cutoff)
			return err
		})
		won := 0
		for i := range closed {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if closed[i] {
				won++
			}
		}
		got := stored(t, s, o.ID)
		if won != 1 || got.PaymentAttempts != 1 || !got.PaymentStartedAt.IsZero() || got.Status != order.StatusPending {
			t.Fatalf("%d closes won; order %+v", won, got)
		}
		if c, err := s.CloseStalledAttempt(ctx, o.ID, 0, cutoff); err != nil || c {
			t.Fatalf("closing an attempt that moved on: %v %v", c, err)
		}
		// The shopper pays again: attempt 1 goes out after the cutoff a reconciliation
		// computed, which must not close it.
		if err := s.StartPaymentAttempt(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		if c, err := s.CloseStalledAttempt(ctx, o.ID, 1, time.Now().Add(-time.Minute)); err != nil || c {
			t.Fatalf("closing an attempt sent after the cutoff: %v %v", c, err)
		}
		if got := stored(t, s, o.ID); got.PaymentAttempts != 1 || got.PaymentStartedAt.IsZero() {
			t.Fatalf("the new attempt was touched: %+v", got)
		}
	})
}

func TestDeleteOrder(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		stock := product(t, s, towel).Stock
		pending := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 2})
		deleted, err := s.DeleteOrder(ctx, pending.ID, false)
		if err != nil || deleted.ID != pending.ID {
			t.Fatalf("owner deletes a pending order: %v", err)
		}
		if product(t, s, towel).Stock != stock {
			t.Fatal("deleting a pending order kept its stock reserved")
		}
		if _, err := s.Order(ctx, pending.ID); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("a deleted order is still readable: %v", err)
		}
		if _, err := s.DeleteOrder(ctx, pending.ID, true); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}

		paid := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if _, _, err := s.MarkPaid(ctx, paid.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteOrder(ctx, paid.ID, false); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("owner deletes a paid order: %v", err)
		}
		if _, err := s.Order(ctx, paid.ID); err != nil {
			t.Fatal("a refused delete deleted")
		}
		if _, err := s.DeleteOrder(ctx, paid.ID, true); err != nil {
			t.Fatalf("admin deletes a paid order: %v", err)
		}
		if product(t, s, towel).Stock != stock-1 {
			t.Fatal("deleting a paid order put sold goods back in stock")
		}
		assertOrders(t, s, "alice", 0)
		if all, _ := s.AllOrders(ctx, store.Filter{}, store.Page{}); len(all) != 0 {
			t.Fatalf("deleted orders listed: %d", len(all))
		}

		cancelled := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if _, err := s.CancelOrder(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteOrder(ctx, cancelled.ID, false); err != nil {
			t.Fatalf("owner deletes a cancelled order: %v", err)
		}
		if product(t, s, towel).Stock != stock-1 {
			t.Fatal("deleting a cancelled order released its stock a second time")
		}

		// Deleted is not unknown: the payment service's reports about it are final.
		live := create(t, s, "bob", order.Line{ProductID: towel, Quantity: 1})
		for id, want := range map[string]bool{pending.ID: true, paid.ID: true, live.ID: false, uuid.NewString(): false, "nope": false} {
			if got, err := s.Deleted(ctx, id); err != nil || got != want {
				t.Fatalf("Deleted(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
	})
}

func TestRecordRefund(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		o := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 2})
		total := o.Total.Amount
		if _, _, err := s.RecordRefund(ctx, o.ID, "pay-1", total, true); !errors.Is(err, order.ErrInvalidTransition) {
			t.Fatalf("refund of a pending order: %v", err)
		}
		if _, _, err := s.MarkPaid(ctx, o.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RecordRefund(ctx, o.ID, "pay-other", 100, false); !errors.Is(err, order.ErrPaymentMismatch) {
			t.Fatalf("refund of another payment: %v", err)
		}
		if _, _, err := s.RecordRefund(ctx, o.ID, "pay-1", total+1, true); !errors.Is(err, validation.ErrInvalid) {
			t.Fatalf("refund above the total: %v", err)
		}

		got, changed, err := s.RecordRefund(ctx, o.ID, "pay-1", 100, false)
		if err != nil || !changed || got.Status != order.StatusPaid || got.Refunded != order.EUR(100) {
			t.Fatalf("partial refund: %+v changed %v: %v", got, changed, err)
		}
		for _, amount := range []int64{100, 50} { // a retry, then a report overtaken by the first
			if got, changed, err := s.RecordRefund(ctx, o.ID, "pay-1", amount, false); err != nil || changed || got.Refunded != order.EUR(100) {
				t.Fatalf("report of %d: %+v changed %v: %v", amount, got, changed, err)
			}
		}
		got, changed, err = s.RecordRefund(ctx, o.ID, "pay-1", total, true)
		if err != nil || !changed || got.Status != order.StatusRefunded || got.Refunded.Amount != total {
			t.Fatalf("full refund: %+v changed %v: %v", got, changed, err)
		}
		if _, changed, err := s.RecordRefund(ctx, o.ID, "pay-1", total, true); err != nil || changed {
			t.Fatalf("full refund reported again: changed %v: %v", changed, err)
		}
	})
}

func TestListsFilterByOwnerInTheQuery(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		a1 := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		a2 := create(t, s, "alice", order.Line{ProductID: mug, Quantity: 1})
		b1 := create(t, s, "bob", order.Line{ProductID: towel, Quantity: 1})
		if _, _, err := s.MarkPaid(ctx, a2.ID, "pay-1"); err != nil {
			t.Fatal(err)
		}
		mine := assertOrders(t, s, "alice", 2)
		if mine[0].ID != a2.ID || mine[1].ID != a1.ID {
			t.Fatalf("alice's orders not newest first: %s, %s", mine[0].ID, mine[1].ID)
		}
		if theirs := assertOrders(t, s, "bob", 1); theirs[0].ID != b1.ID {
			t.Fatal("bob sees another order")
		}
		if _, err := s.OrdersOf(ctx, "", store.Page{}); err == nil {
			t.Fatal("OrdersOf without an owner listed orders")
		}
		if page := must(s.OrdersOf(ctx, "alice", store.Page{Limit: 1, Offset: 1})); len(page) != 1 || page[0].ID != a1.ID {
			t.Fatalf("page 2 of 1: %+v", page)
		}

		cases := []struct {
			f    store.Filter
			want []string
		}{
			{store.Filter{}, []string{b1.ID, a2.ID, a1.ID}},
			{store.Filter{Status: order.StatusPaid}, []string{a2.ID}},
			{store.Filter{Customer: "bob-name"}, []string{b1.ID}},
			{store.Filter{Customer: "alice-name", Status: order.StatusPending}, []string{a1.ID}},
			{store.Filter{Customer: "nobody"}, nil},
		}
		for _, tc := range cases {
			var got []string
			for _, o := range must(s.AllOrders(ctx, tc.f, store.Page{})) {
				got = append(got, o.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("filter %+v: %v, want %v", tc.f, got, tc.want)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuditCommitsAndRollsBackWithItsAction(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		entry := order.AuditEntry{ActorSubject: "ada-sub", ActorUsername: "ada", Action: order.ActionProductRetire,
			TargetID: mug, Details: map[string]any{"name": "Stoneware Coffee Mug"}, RequestID: "req-1"}
		err := s.Tx(ctx, func(tx *store.Store) error {
			if _, err := tx.RetireProduct(ctx, mug); err != nil {
				return err
			}
			return tx.Audit(ctx, entry)
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = s.Tx(ctx, func(tx *store.Store) error {
			if _, err := tx.RetireProduct(ctx, towel); err != nil {
				return err
			}
			if err := tx.Audit(ctx, order.AuditEntry{Action: order.ActionProductRetire, TargetID: towel}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := s.Product(ctx, towel); err != nil {
			t.Fatal("a rolled back retire took effect")
		}
		log := must(s.AuditLog(ctx, store.AuditFilter{}, store.Page{}))
		if len(log) != 1 {
			t.Fatalf("%d audit entries, want 1: %+v", len(log), log)
		}
		got := log[0]
		if got.ID == 0 || got.At.IsZero() || got.ActorSubject != "ada-sub" || got.ActorUsername != "ada" ||
			got.Action != order.ActionProductRetire || got.TargetID != mug || got.RequestID != "req-1" || got.Details["name"] != "Stoneware Coffee Mug" {
			t.Fatalf("audit entry %+v", got)
		}
	})
}

// stored reads an order back, failing the test if it cannot.
func stored(t *testing.T, s *store.Store, id string) order.Order {
	t.Helper()
	o, err := s.Order(ctx, id)
	if err != nil {
		t.Fatalf("order %s: %v", id, err)
	}
	return o
}
