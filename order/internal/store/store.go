// Package store keeps the order service's catalog, orders and audit log in a SQL database
// through GORM: SQLite (pure Go, no cgo) as the embedded default, PostgreSQL in production.
//
// Every rule that two requests could race on is decided by the database in one statement
// or one transaction, never by reading first and writing later: stock is reserved with a
// conditional update, status moves are compare-and-set updates on the current status, and
// an Idempotency-Key is a unique index. The same code and the same contract tests run on
// both databases.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Drivers the store can open.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and reaches the database.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is a file path for SQLite (its folder is created), a connection string for
	// PostgreSQL.
	DSN string
	// Logger receives slow queries and database errors; nothing when nil.
	Logger *slog.Logger
}

// Store is the order service's database. It is safe for concurrent use.
type Store struct {
	db *gorm.DB
}

// Open connects to the database and brings its schema up to date with the versioned
// migrations (which also load the seed catalog into a new database).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	var dialector gorm.Dialector
	switch cfg.Driver {
	case DriverSQLite:
		dsn, err := sqliteDSN(cfg.DSN)
		if err != nil {
			return nil, err
		}
		dialector = sqlite.Open(dsn)
	case DriverPostgres:
		dialector = postgres.Open(cfg.DSN)
	default:
		return nil, fmt.Errorf("store: unknown driver %q (want %s or %s)", cfg.Driver, DriverSQLite, DriverPostgres)
	}
	gormLog := logger.Discard
	if cfg.Logger != nil {
		gormLog = logger.NewSlogLogger(cfg.Logger, logger.Config{
			SlowThreshold:             200 * time.Millisecond,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			// Logs show statements, never the values bound to them.
			ParameterizedQueries: true,
		})
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger: gormLog,
		// Unique violations come back as gorm.ErrDuplicatedKey on both databases.
		TranslateError: true,
		// Every write that needs a transaction opens one explicitly.
		SkipDefaultTransaction: true,
		// UTC, to the microsecond PostgreSQL keeps, so a time reads back as it was written
		// on either database.
		NowFunc: now,
	})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", cfg.Driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db}
	if err := s.migrate(ctx, cfg.Driver); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// sqliteDSN adds the connection settings the store relies on to a SQLite path:
//   - journal_mode(WAL): readers do not block the writer nor it them;
//   - busy_timeout: a writer waits for the lock instead of failing at once;
//   - _txlock=immediate: a transaction takes the write lock when it begins, so two
//     transactions that read and then write cannot both read and then deadlock on
//     upgrading; they queue instead (SQLite's answer to SELECT ... FOR UPDATE);
//   - foreign_keys(1): SQLite enforces foreign keys only when asked.
func sqliteDSN(dsn string) (string, error) {
	if dsn == "" {
		return "", errors.New("store: the SQLite DSN (a file path) is empty")
	}
	path, query, _ := strings.Cut(dsn, "?")
	if path != ":memory:" && !strings.HasPrefix(path, "file:") {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return "", fmt.Errorf("store: creating the database folder: %w", err)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("store: SQLite DSN options: %w", err)
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode(), nil
}

// Tx runs fn in one transaction on a Store bound to it, so several operations commit or
// roll back together (an admin action and its audit entry, for instance). Operations that
// open their own transaction inside fn run as savepoints of it.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{db: tx})
	})
}

// Ping reports whether the database answers, for the readiness probe.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the database connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Page bounds a list.
type Page struct {
	Limit  int
	Offset int
}

func (p Page) apply(db *gorm.DB) *gorm.DB {
	limit := p.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	return db.Limit(limit).Offset(max(p.Offset, 0))
}

// MaxPageSize caps every list, whatever the caller asks.
const MaxPageSize = 200
