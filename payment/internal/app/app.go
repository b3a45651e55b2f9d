// Package app wires the payment service together: configuration, database, token
// verification, the order service client, the card processor, the outbox relay and the HTTP
// server.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/orders"
	"example.com/shop/payment/internal/outbox"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/payment/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/server"
)

// Config is the payment service's configuration, from environment variables.
type Config struct {
	Addr         string        `env:"PAYMENT_ADDR" default:":8082"`
	DBDriver     string        `env:"PAYMENT_DB_DRIVER" default:"sqlite"`
	DBDSN        string        `env:"PAYMENT_DB_DSN" default:"data/payment.db" secret:"true"`
	Issuer       string        `env:"OIDC_ISSUER" required:"true"`
	DiscoveryURL string        `env:"OIDC_DISCOVERY_URL"`
	Audience     string        `env:"OIDC_AUDIENCE" default:"shop-api"`
	OrderURL     string        `env:"PAYMENT_ORDER_URL" default:"http://localhost:8081"`
	OrderTimeout time.Duration `env:"PAYMENT_ORDER_TIMEOUT" default:"5s"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.DBDriver != store.DriverSQLite && c.DBDriver != store.DriverPostgres {
		errs = append(errs, fmt.Errorf("PAYMENT_DB_DRIVER = %q: must be sqlite or postgres", c.DBDriver))
	}
	for name, v := range map[string]string{"OIDC_ISSUER": c.Issuer, "OIDC_DISCOVERY_URL": c.DiscoveryURL, "PAYMENT_ORDER_URL": c.OrderURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s = %q: must be an absolute http(s) URL", name, v))
		}
	}
	if c.OrderTimeout <= 0 {
		errs = append(errs, errors.New("PAYMENT_ORDER_TIMEOUT must be positive"))
	}
	return errs
}

// Run starts the service and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("service", "payment")
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))

	db, err := store.Open(ctx, store.Options{Driver: cfg.DBDriver, DSN: cfg.DBDSN, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	verifier, err := authn.NewVerifier(authn.Config{Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL, Audience: cfg.Audience})
	if err != nil {
		return err
	}
	orderClient, err := orders.New(cfg.OrderURL, cfg.OrderTimeout)
	if err != nil {
		return err
	}
	relay := outbox.New(db, orderClient, outbox.Options{Logger: log})
	svc := payment.NewService(payment.Deps{
		Store: db, Orders: orderClient, Processor: processor.Simulated{}, Notifier: relay, Logger: log,
	})
	app := httpapi.New(httpapi.Options{
		Service: svc, Authenticate: verifier.Middleware(log), Logger: log,
		Ready: map[string]server.Check{"database": db.Ping, "token keys": verifier.Ready},
	})

	// The relay stops with the server, before the database closes.
	relayCtx, stopRelay := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { relay.Run(relayCtx) })
	defer func() { stopRelay(); wg.Wait() }()
	if n, err := db.PendingNotices(ctx); err == nil && n > 0 {
		log.Warn("refund notices waiting for the order service", "pending", n)
	}
	return server.ListenAndServe(ctx, app, cfg.Addr)
}
