package database_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"example.com/shop/platform/database"
)

// The behaviour both drivers share is tested on SQLite, and again on PostgreSQL when
// SHOP_TEST_POSTGRES_DSN names a server (the end-to-end suite sets it), as the stores'
// contract tests are. The SQLite run is the test.

// eachBackend runs test on a fresh SQLite database, and on the PostgreSQL server that
// SHOP_TEST_POSTGRES_DSN names when it is set.
func eachBackend(t *testing.T, test func(t *testing.T, cfg database.Config)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteConfig(t)) })
	if dsn := os.Getenv("SHOP_TEST_POSTGRES_DSN"); dsn != "" {
		t.Run("postgres", func(t *testing.T) { test(t, database.Config{Driver: database.DriverPostgres, DSN: dsn}) })
	}
}

// sqliteConfig is a new SQLite database in a folder of the test's own.
func sqliteConfig(t *testing.T) database.Config {
	return database.Config{Driver: database.DriverSQLite, DSN: filepath.Join(t.TempDir(), "shop.db")}
}

// open opens cfg's database for the test and closes it after.
func open(t *testing.T, cfg database.Config) *gorm.DB {
	t.Helper()
	db, err := database.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

type parent struct {
	ID   string
	Name string
}

type child struct {
	ID        string
	ParentID  string
	CreatedAt time.Time
}

// tables creates a parent table (names unique) holding parent p1, "mug", and a child table
// (a foreign key to it), of the test's own so that tests sharing a PostgreSQL database never
// meet, and drops them after the test.
func tables(t *testing.T, db *gorm.DB, driver string) (parents, children string) {
	t.Helper()
	suffix := strings.ToLower(rand.Text()[:12])
	parents, children = "parents_"+suffix, "children_"+suffix
	timestamp := "DATETIME"
	if driver == database.DriverPostgres {
		timestamp = "TIMESTAMPTZ"
	}
	t.Cleanup(func() {
		db.Exec("DROP TABLE IF EXISTS " + children)
		db.Exec("DROP TABLE IF EXISTS " + parents)
	})
	for _, ddl := range []string{
		fmt.Sprintf("CREATE TABLE %s (id VARCHAR(36) PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE)", parents),
		fmt.Sprintf("CREATE TABLE %s (id VARCHAR(36) PRIMARY KEY, parent_id VARCHAR(36) NOT NULL REFERENCES %s (id), created_at %s NOT NULL)",
			children, parents, timestamp),
	} {
		if err := db.Exec(ddl).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Table(parents).Create(&parent{ID: "p1", Name: "mug"}).Error; err != nil {
		t.Fatal(err)
	}
	return parents, children
}

func TestViolationsComeBackAsGORMErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg database.Config) {
		db := open(t, cfg)
		parents, children := tables(t, db, cfg.Driver)
		err := db.Table(parents).Create(&parent{ID: "p2", Name: "mug"}).Error
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			t.Errorf("a second parent of the same name: %v, want gorm.ErrDuplicatedKey", err)
		}
		// On SQLite this also shows that foreign keys are enforced.
		err = db.Table(children).Create(&child{ID: "c1", ParentID: "nobody"}).Error
		if !errors.Is(err, gorm.ErrForeignKeyViolated) {
			t.Errorf("a child of no parent: %v, want gorm.ErrForeignKeyViolated", err)
		}
	})
}

func TestStampedTimesAreUTCToTheMicrosecondAndReadBackAsWritten(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg database.Config) {
		db := open(t, cfg)
		_, children := tables(t, db, cfg.Driver)
		c := child{ID: "c1", ParentID: "p1"}
		if err := db.Table(children).Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		if c.CreatedAt.IsZero() || c.CreatedAt.Location() != time.UTC || c.CreatedAt.Nanosecond()%1000 != 0 {
			t.Fatalf("stamped CreatedAt %v: want a UTC time to the microsecond", c.CreatedAt)
		}
		var got child
		if err := db.Table(children).Where("id = ?", c.ID).Take(&got).Error; err != nil {
			t.Fatal(err)
		}
		if !got.CreatedAt.Equal(c.CreatedAt) {
			t.Fatalf("CreatedAt read back as %v, written as %v", got.CreatedAt, c.CreatedAt)
		}
	})
}

func TestLogsShowFailedStatementsButNotTheirValues(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg database.Config) {
		var logs bytes.Buffer
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		db := open(t, cfg)
		parents, _ := tables(t, db, cfg.Driver)
		const secret = "4111111111111111"

		if err := db.Table(parents).Where("name = ?", secret).Take(&parent{}).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Fatalf("a lookup of nothing: %v", err)
		}
		if logs.Len() != 0 {
			t.Fatalf("a record not found was logged:\n%s", logs.String())
		}

		if err := db.Exec("SELECT id FROM "+parents+" WHERE name = ? AND no_such_column = 1", secret).Error; err == nil {
			t.Fatal("a statement on a missing column succeeded")
		}
		out := logs.String()
		if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "no_such_column") {
			t.Errorf("the failed statement is not logged as an error:\n%s", out)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the log shows a value bound to the statement:\n%s", out)
		}
	})
}

func TestPingAnswersUntilClosed(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg database.Config) {
		db, err := database.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := database.Ping(t.Context(), db); err != nil {
			t.Fatalf("ping of an open database: %v", err)
		}
		if err := database.Close(db); err != nil {
			t.Fatal(err)
		}
		if err := database.Ping(t.Context(), db); err == nil {
			t.Fatal("a closed database answered the readiness ping")
		}
	})
}

func TestOpenStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if db, err := database.Open(ctx, sqliteConfig(t)); !errors.Is(err, context.Canceled) {
		if err == nil {
			_ = database.Close(db)
		}
		t.Fatalf("Open with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestOpenRefusesAnUnknownDriver(t *testing.T) {
	const password = "s3cret-pw"
	_, err := database.Open(t.Context(), database.Config{Driver: "mysql", DSN: "shop:" + password + "@tcp(db)/shop"})
	if !errors.Is(err, database.ErrUnknownDriver) {
		t.Fatalf("driver mysql: %v, want ErrUnknownDriver", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"mysql"`) || strings.Contains(msg, password) {
		t.Fatalf("the error should name the driver, and never the DSN: %q", msg)
	}
}

func TestSQLiteSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "folders", "shop.db")
	db := open(t, database.Config{Driver: database.DriverSQLite, DSN: path})

	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the database file in a folder that did not exist: %v", err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := db.Raw("PRAGMA " + pragma).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

// Immediate transactions take the write lock when they begin: a second one waits for the
// first to end, instead of both reading and then deadlocking on the upgrade to writing.
func TestSQLiteTransactionsTakeTheWriteLockWhenTheyBegin(t *testing.T) {
	db := open(t, sqliteConfig(t))
	first := db.Begin()
	if first.Error != nil {
		t.Fatal(first.Error)
	}
	began := make(chan error, 1)
	go func() {
		second := db.Begin()
		if second.Error != nil {
			began <- second.Error
			return
		}
		began <- second.Rollback().Error
	}()
	select {
	case err := <-began:
		t.Fatalf("a second transaction began (%v) while the first held the write lock", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := first.Commit().Error; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-began:
		if err != nil {
			t.Fatalf("the second transaction, once the first committed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second transaction still waits after the first committed")
	}
}

func TestSQLiteDSNMayAddOptionsButNotChangeOpensSettings(t *testing.T) {
	dir := t.TempDir()
	db := open(t, database.Config{Driver: database.DriverSQLite, DSN: filepath.Join(dir, "shop.db") + "?_pragma=synchronous(NORMAL)"})
	var synchronous int
	if err := db.Raw("PRAGMA synchronous").Scan(&synchronous).Error; err != nil || synchronous != 1 {
		t.Errorf("PRAGMA synchronous = %d (%v), want the DSN's NORMAL (1)", synchronous, err)
	}
	var mode string
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
		t.Errorf("PRAGMA journal_mode = %q (%v) beside the DSN's own option, want wal", mode, err)
	}

	for _, tc := range []struct{ query, names string }{
		{"_txlock=deferred", "_txlock"},
		{"_time_format=sqlite", "_time_format"},
		{"_pragma=foreign_keys(0)", "foreign_keys"},
		{"_pragma=busy_timeout(1)", "busy_timeout"},
		{"_pragma=" + url.QueryEscape("main.Journal_Mode = DELETE"), "journal_mode"},
	} {
		_, err := database.Open(t.Context(), database.Config{Driver: database.DriverSQLite, DSN: filepath.Join(dir, "other.db") + "?" + tc.query})
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("DSN option %s: %v, want an error naming %s", tc.query, err, tc.names)
		}
	}
	if _, err := database.Open(t.Context(), database.Config{Driver: database.DriverSQLite, DSN: "?_pragma=synchronous(NORMAL)"}); err == nil {
		t.Error("a SQLite DSN without a file path was accepted")
	}
}

// A PostgreSQL DSN may hold a password. Whether the DSN cannot be parsed or the server
// cannot be reached, neither the error nor the log repeats it. No server is needed.
func TestPostgresErrorsNeverShowThePassword(t *testing.T) {
	const password = "s3cret-pw"
	// A port that refuses connections: one that was free a moment ago.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	for _, dsn := range []string{
		"postgres://shop:" + password + "@localhost:notaport/shop",
		"host=localhost port=notaport user=shop password=" + password + " dbname=shop",
		fmt.Sprintf("postgres://shop:%s@127.0.0.1:%d/shop?sslmode=disable&connect_timeout=5", password, port),
		fmt.Sprintf("host=127.0.0.1 port=%d user=shop password=%s dbname=shop sslmode=disable connect_timeout=5", port, password),
	} {
		var logs bytes.Buffer
		db, err := database.Open(t.Context(), database.Config{
			Driver: database.DriverPostgres, DSN: dsn, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err == nil {
			_ = database.Close(db)
			t.Fatalf("opened an unreachable PostgreSQL")
		}
		if strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
			t.Errorf("the password shows:\nerror: %v\nlog: %s", err, logs.String())
		}
	}
}
