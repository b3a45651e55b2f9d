// Package database opens the services' SQL databases through GORM, the same way for every
// service: SQLite (pure Go, no cgo) as the embedded default, PostgreSQL in production.
//
// It owns the connection and the settings the stores' rules rely on on both databases (see
// Open); each service keeps its own schema, migrations and queries.
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Drivers Open accepts.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// ErrUnknownDriver is returned by Open for a driver other than DriverSQLite and
// DriverPostgres.
var ErrUnknownDriver = errors.New("database: unknown driver")

// Config selects and reaches the database.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is a file path for SQLite (its folder is created; options may follow a "?", but
	// not the settings Open makes itself), a connection string for PostgreSQL. It may hold
	// a password: Open's errors never quote it, and pgx masks the password in the DSN it
	// quotes when it cannot parse one.
	DSN string
	// Logger receives failed and slow statements, never the values bound to them; nothing
	// is logged when it is nil.
	Logger *slog.Logger
}

// Tuning shared by both databases.
const (
	// slowStatement is how long a statement may take before it is logged as slow.
	slowStatement = 200 * time.Millisecond
	// maxIdleTime closes a pooled connection left unused this long, so that a quiet
	// service gives its server connections back.
	maxIdleTime = 5 * time.Minute
)

// Open connects to the database and checks that it answers within ctx. The database it
// returns is configured as the stores expect on both drivers:
//   - unique and foreign-key violations come back as gorm.ErrDuplicatedKey and
//     gorm.ErrForeignKeyViolated (TranslateError);
//   - no statement runs in a transaction of its own: a write that needs one opens it
//     explicitly (SkipDefaultTransaction);
//   - the times GORM stamps are Now's: UTC, to the microsecond;
//   - on SQLite, WAL, a busy timeout, foreign keys and immediate transactions (see
//     sqliteDSN).
//
// The caller owns the database and closes it with Close.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
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
		return nil, fmt.Errorf("%w %q (want %s or %s)", ErrUnknownDriver, cfg.Driver, DriverSQLite, DriverPostgres)
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 newLogger(cfg.Logger),
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                Now,
		// GORM's own ping ignores ctx; the one below does not, so a service asked to stop
		// while the database is unreachable stops at once.
		DisableAutomaticPing: true,
	})
	if err != nil {
		return nil, fmt.Errorf("database: opening %s: %w", cfg.Driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("database: opening %s: %w", cfg.Driver, err)
	}
	sqlDB.SetConnMaxIdleTime(maxIdleTime)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database: reaching %s: %w", cfg.Driver, err)
	}
	return db, nil
}

// newLogger returns GORM's logger for l: failed statements and those slower than
// slowStatement, written as statements with placeholders, since the values bound to them
// are customers' data. A record that is not found is an answer, not a failure.
func newLogger(l *slog.Logger) logger.Interface {
	if l == nil {
		return logger.Discard
	}
	return logger.NewSlogLogger(l, logger.Config{
		SlowThreshold:             slowStatement,
		LogLevel:                  logger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	})
}

// Now is the time GORM stamps on rows, and the one stores should write: UTC, to the
// microsecond PostgreSQL keeps, so that a time reads back as it was written on either
// database.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Ping reports whether the database answers, for a readiness probe.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the database's connections.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
