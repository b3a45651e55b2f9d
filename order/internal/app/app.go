// Package app wires the order service together: configuration, database, token verifier,
// payment client and HTTP API, then serves until the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"example.com/shop/order/internal/httpapi"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/server"
)

// Config is the order service's configuration, from environment variables (each may also
// be given as NAME_FILE).
type Config struct {
	Addr string `env:"ORDER_ADDR" default:":8081"`

	DBDriver string `env:"ORDER_DB_DRIVER" default:"sqlite"`
	// DBDSN is a file path for SQLite, a connection string for PostgreSQL. Secret: a
	// PostgreSQL DSN carries a password.
	DBDSN string `env:"ORDER_DB_DSN" secret:"true"`

	// OIDCIssuer is the `iss` tokens must carry: the URL browsers use for the realm.
	OIDCIssuer string `env:"OIDC_ISSUER" required:"true"`
	// OIDCDiscoveryURL is where keys are fetched from when that differs from the issuer
	// (inside a container network).
	OIDCDiscoveryURL string `env:"OIDC_DISCOVERY_URL"`
	OIDCAudience     string `env:"OIDC_AUDIENCE" default:"shop-api"`

	PaymentURL     string        `env:"ORDER_PAYMENT_URL" default:"http://localhost:8082"`
	PaymentTimeout time.Duration `env:"ORDER_PAYMENT_TIMEOUT" default:"5s"`
}

// defaultSQLitePath is ORDER_DB_DSN's default for SQLite. It is applied in Validate rather
// than as a tag default, because for PostgreSQL no default makes sense.
const defaultSQLitePath = "data/order.db"

// Validate checks what types and presence cannot, and fills the SQLite default path.
func (c *Config) Validate() []error {
	var errs []error
	switch c.DBDriver {
	case store.DriverSQLite:
		if c.DBDSN == "" {
			c.DBDSN = defaultSQLitePath
		}
	case store.DriverPostgres:
		if c.DBDSN == "" {
			errs = append(errs, errors.New("ORDER_DB_DSN is required when ORDER_DB_DRIVER is postgres"))
		}
	default:
		errs = append(errs, fmt.Errorf("ORDER_DB_DRIVER = %q: must be sqlite or postgres", c.DBDriver))
	}
	if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OIDC_ISSUER = %q: must be an http(s) URL", c.OIDCIssuer))
	}
	if u, err := url.Parse(c.PaymentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ORDER_PAYMENT_URL = %q: must be an http(s) URL", c.PaymentURL))
	}
	if c.PaymentTimeout <= 0 || c.PaymentTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("ORDER_PAYMENT_TIMEOUT = %s: must be more than 0 and at most 1m", c.PaymentTimeout))
	}
	return errs
}

// Run starts the service and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("service", "order")
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))

	api, closeAll, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	return server.ListenAndServe(ctx, api.App, cfg.Addr)
}

// build assembles the service from cfg: it opens (and migrates) the database and returns
// the API and a function that releases what build opened.
func build(ctx context.Context, cfg Config, log *slog.Logger) (*httpapi.API, func(), error) {
	db, err := store.Open(ctx, store.Config{Driver: cfg.DBDriver, DSN: cfg.DBDSN, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	verifier, err := authn.NewVerifier(authn.Config{
		Issuer: cfg.OIDCIssuer, DiscoveryURL: cfg.OIDCDiscoveryURL, Audience: cfg.OIDCAudience,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	payments, err := payment.New(cfg.PaymentURL, cfg.PaymentTimeout)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	api := httpapi.New(httpapi.Deps{
		Store:        db,
		Payments:     payments,
		Authenticate: verifier.Middleware(log),
		Logger:       log,
		// Not ready until tokens can be verified and the database answers. The payment
		// service is not a readiness check: the catalog and orders work without it, and
		// checkout answers 503 on its own while it is away.
		Ready: map[string]server.Check{"database": db.Ping, "token keys": verifier.Ready},
	})
	return api, func() { db.Close() }, nil
}
