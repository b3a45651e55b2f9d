// Package app wires the payment service together: configuration, database, token
// verification, the order service clients, the card processor, the outbox relay, and the
// two HTTP listeners (the public API, and the internal one behind mutual TLS).
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/orders"
	"example.com/shop/payment/internal/outbox"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/payment/internal/recovery"
	"example.com/shop/payment/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/logging"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/telemetry"
)

// Config is the payment service's configuration, from environment variables (each may also
// be given as NAME_FILE).
type Config struct {
	Addr         string        `env:"PAYMENT_ADDR" default:":8082"`
	DBDriver     string        `env:"PAYMENT_DB_DRIVER" default:"sqlite"`
	DBDSN        string        `env:"PAYMENT_DB_DSN" default:"data/payment.db" secret:"true"`
	Issuer       string        `env:"OIDC_ISSUER" required:"true"`
	DiscoveryURL string        `env:"OIDC_DISCOVERY_URL"`
	Audience     string        `env:"OIDC_AUDIENCE" default:"shop-api"`
	OrderURL     string        `env:"PAYMENT_ORDER_URL" default:"http://localhost:8081"`
	OrderTimeout time.Duration `env:"PAYMENT_ORDER_TIMEOUT" default:"5s"`

	// InternalAddr is the internal listener: mutual TLS, for calls other services make
	// with no user behind them.
	InternalAddr string `env:"PAYMENT_INTERNAL_ADDR" default:":8443"`
	// TLSCA, TLSCert and TLSKey are PEM files: the internal CA, this service's certificate
	// (SPIFFE id spiffe://shop/payment-service) and its key. Renewed files are picked up
	// without a restart.
	TLSCA   string `env:"PAYMENT_TLS_CA" default:"certs/ca.pem"`
	TLSCert string `env:"PAYMENT_TLS_CERT" default:"certs/payment-service.pem"`
	TLSKey  string `env:"PAYMENT_TLS_KEY" default:"certs/payment-service-key.pem"`
	// ClientID and ClientSecret are the payment service's own Keycloak client (client
	// credentials). ClientID is also the audience of tokens addressed to this service.
	ClientID     string `env:"PAYMENT_CLIENT_ID" default:"payment-service"`
	ClientSecret string `env:"PAYMENT_CLIENT_SECRET" required:"true" secret:"true"`
	// TokenURL is Keycloak's token endpoint; found by discovery (OIDC_DISCOVERY_URL, else
	// OIDC_ISSUER) when empty.
	TokenURL string `env:"PAYMENT_TOKEN_URL"`
	// OrderInternalURL is the order service's internal listener, where notices go.
	OrderInternalURL string `env:"PAYMENT_ORDER_INTERNAL_URL" default:"https://localhost:8444"`
	// RecoverInterval is how often payments left processing longer than
	// payment.RecoverAfter are settled from the processor's records.
	RecoverInterval time.Duration `env:"PAYMENT_RECOVER_INTERVAL" default:"30s"`
	// TokenExchange makes the payment service read a charge's order with the caller's token
	// exchanged for one addressed to OrderAudience alone (RFC 8693), rather than with the
	// token it was sent. The price: Keycloak must answer for every charge.
	TokenExchange bool   `env:"PAYMENT_TOKEN_EXCHANGE" default:"true"`
	OrderAudience string `env:"PAYMENT_ORDER_AUDIENCE" default:"order-service"`
	// MetricsFrom are the networks that may read /metrics (the Prometheus scraper's
	// addresses); empty: loopback only. Others get 404.
	MetricsFrom []netip.Prefix `env:"PAYMENT_METRICS_FROM"`
	// PprofAddr, when set, serves Go's profiling endpoints on this loopback address
	// (server.ListenDebug), e.g. 127.0.0.1:6061; off by default.
	PprofAddr string `env:"PAYMENT_PPROF_ADDR"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.DBDriver != store.DriverSQLite && c.DBDriver != store.DriverPostgres {
		errs = append(errs, fmt.Errorf("PAYMENT_DB_DRIVER = %q: must be sqlite or postgres", c.DBDriver))
	}
	for name, v := range map[string]string{"OIDC_ISSUER": c.Issuer, "OIDC_DISCOVERY_URL": c.DiscoveryURL,
		"PAYMENT_ORDER_URL": c.OrderURL, "PAYMENT_TOKEN_URL": c.TokenURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s = %q: must be an absolute http(s) URL", name, v))
		}
	}
	if u, err := url.Parse(c.OrderInternalURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("PAYMENT_ORDER_INTERNAL_URL = %q: must be an absolute https URL", c.OrderInternalURL))
	}
	if c.OrderTimeout <= 0 {
		errs = append(errs, errors.New("PAYMENT_ORDER_TIMEOUT must be positive"))
	}
	if c.RecoverInterval <= 0 {
		errs = append(errs, errors.New("PAYMENT_RECOVER_INTERVAL must be positive"))
	}
	if c.PprofAddr != "" {
		if err := server.CheckDebugAddr(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("PAYMENT_PPROF_ADDR: %w", err))
		}
	}
	return errs
}

// Run starts the service and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log, closeLog := logging.New(os.Stdout, "payment")
	defer closeLog()
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))
	stopTracing, err := telemetry.Setup(ctx, "payment", getenv)
	if err != nil {
		return err
	}
	defer stopTracing()

	svc, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.close()
	if n, err := svc.store.PendingNotices(ctx); err == nil && n > 0 {
		log.Warn("notices waiting for the order service", "pending", n)
	}
	public, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	internal, err := net.Listen("tcp", cfg.InternalAddr)
	if err != nil {
		public.Close()
		return err
	}
	if cfg.PprofAddr != "" {
		if err := server.ListenDebug(ctx, cfg.PprofAddr, log); err != nil {
			public.Close()
			internal.Close()
			return err
		}
	}
	return svc.serve(ctx, public, internal)
}

// service is the payment service assembled from its configuration.
type service struct {
	public   *fiber.App
	internal *fiber.App
	identity *mtls.Identity
	relay    *outbox.Relay
	store    *store.Store
	// recover runs payment recovery until its context ends.
	recover func(context.Context)
}

// build assembles the service from cfg: it opens (and migrates) the database and loads the
// service's certificate. Nothing listens yet.
func build(ctx context.Context, cfg Config, log *slog.Logger) (*service, error) {
	identity, err := mtls.Load(mtls.Files{CA: cfg.TLSCA, Cert: cfg.TLSCert, Key: cfg.TLSKey})
	if err != nil {
		return nil, err
	}
	// Tokens addressed to the payment service itself (the order service's client-
	// credentials tokens) verify here too; the routes' policies then tell a service from a
	// user, answering 403 to the wrong kind of caller rather than 401.
	verifier, err := authn.NewVerifier(authn.Config{Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL,
		Audience: cfg.Audience, ExtraAudiences: []string{cfg.ClientID}})
	if err != nil {
		return nil, err
	}
	client := svcauth.Config{
		TokenURL: cfg.TokenURL, Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
	}
	var exchange orders.Exchange
	if cfg.TokenExchange {
		exchange = svcauth.NewExchanger(client, cfg.OrderAudience).Exchange
	}
	orderClient, err := orders.New(cfg.OrderURL, cfg.OrderTimeout, exchange)
	if err != nil {
		return nil, err
	}
	// The payment service calls as itself, with its own client-credentials token (the token
	// endpoint found by discovery unless configured), and only the order service may
	// answer: every internal certificate names localhost, so the host name alone would let
	// any service of the CA take the token.
	tokens := svcauth.TokenSource(ctx, client)
	notices, err := orders.NewNotices(cfg.OrderInternalURL,
		svcauth.NewClient(identity, mtls.ID("order-service"), tokens, cfg.OrderTimeout))
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, store.Options{Driver: cfg.DBDriver, DSN: cfg.DBDSN, Logger: log})
	if err != nil {
		return nil, err
	}
	relay := outbox.New(db, notices, outbox.Options{Logger: log})
	svc := payment.NewService(payment.Deps{
		Store: db, Orders: orderClient, Processor: processor.New(), Notifier: relay, Logger: log,
	})
	return &service{
		public: httpapi.New(httpapi.Options{
			Service: svc, Authenticate: verifier.Middleware(log), Logger: log,
			Ready:       map[string]server.Check{"database": db.Ping, "token keys": verifier.Ready},
			MetricsFrom: cfg.MetricsFrom,
		}),
		internal: httpapi.NewInternal(httpapi.InternalOptions{Service: svc, Authenticate: verifier.Middleware(log), Logger: log}),
		identity: identity,
		relay:    relay,
		store:    db,
		recover:  func(ctx context.Context) { recovery.Run(ctx, svc, cfg.RecoverInterval, log) },
	}, nil
}

// serve runs both listeners, the outbox relay and payment recovery until ctx is cancelled or one of them
// fails, then stops the others. The internal listener speaks TLS 1.3 only and requires a
// client certificate from the internal CA.
func (s *service) serve(ctx context.Context, public, internal net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Serve(ctx, s.public, public) })
	g.Go(func() error {
		return server.Serve(ctx, s.internal, tls.NewListener(internal, s.identity.ServerConfig()))
	})
	g.Go(func() error { s.relay.Run(ctx); return nil })
	g.Go(func() error { s.recover(ctx); return nil })
	return g.Wait()
}

func (s *service) close() { _ = s.store.Close() }
