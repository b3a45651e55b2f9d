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

	"gorm.io/gorm"

	"example.com/shop/platform/database"
)

// Drivers the store can open.
const (
	DriverSQLite   = database.DriverSQLite
	DriverPostgres = database.DriverPostgres
)

// Config selects and reaches the database; nothing is logged when its Logger is nil.
type Config = database.Config

// Store is the order service's database. It is safe for concurrent use.
type Store struct {
	db *gorm.DB
}

// Open connects to the database (with the settings database.Open gives both drivers) and
// brings its schema up to date with the versioned migrations (which also load the seed
// catalog into a new database).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	db, err := database.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db}
	if err := s.migrate(ctx, cfg.Driver); err != nil {
		_ = database.Close(db)
		return nil, err
	}
	return s, nil
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
func (s *Store) Ping(ctx context.Context) error { return database.Ping(ctx, s.db) }

// Close closes the database connections.
func (s *Store) Close() error { return database.Close(s.db) }

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
