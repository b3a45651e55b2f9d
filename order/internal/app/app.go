// Package app wires the order service together: configuration, database, token verifier,
// the payment service clients, the reconciliation, the expiry of unpaid orders, and the
// two HTTP listeners (the public
// API, and the internal one behind mutual TLS), then serves until the context ends.
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

	"golang.org/x/sync/errgroup"

	"example.com/shop/order/internal/expiry"
	"example.com/shop/order/internal/httpapi"
	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/reconcile"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/logging"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/telemetry"
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

	// InternalAddr is the internal listener: mutual TLS, for calls other services make
	// with no user behind them (the payment service's notices).
	InternalAddr string `env:"ORDER_INTERNAL_ADDR" default:":8444"`
	// TLSCA, TLSCert and TLSKey are PEM files: the internal CA, this service's certificate
	// (SPIFFE id spiffe://shop/order-service) and its key. Renewed files are picked up
	// without a restart.
	TLSCA   string `env:"ORDER_TLS_CA" default:"certs/ca.pem"`
	TLSCert string `env:"ORDER_TLS_CERT" default:"certs/order-service.pem"`
	TLSKey  string `env:"ORDER_TLS_KEY" default:"certs/order-service-key.pem"`
	// ClientID and ClientSecret are the order service's own Keycloak client (client
	// credentials). ClientID is also the audience of tokens addressed to this service.
	ClientID     string `env:"ORDER_CLIENT_ID" default:"order-service"`
	ClientSecret string `env:"ORDER_CLIENT_SECRET" required:"true" secret:"true"`
	// TokenURL is Keycloak's token endpoint; found by discovery (OIDC_DISCOVERY_URL, else
	// OIDC_ISSUER) when empty.
	TokenURL string `env:"ORDER_TOKEN_URL"`
	// TokenExchange makes a checkout charge the payment service with the shopper's token
	// exchanged for one addressed to PaymentAudience alone (RFC 8693), rather than with the
	// shopper's own API token. The price: Keycloak must answer for every checkout.
	TokenExchange   bool   `env:"ORDER_TOKEN_EXCHANGE" default:"true"`
	PaymentAudience string `env:"ORDER_PAYMENT_AUDIENCE" default:"payment-service"`
	// MetricsFrom are the networks that may read /metrics (the Prometheus scraper's
	// addresses); empty: loopback only. Others get 404.
	MetricsFrom []netip.Prefix `env:"ORDER_METRICS_FROM"`
	// PprofAddr, when set, serves Go's profiling endpoints on this loopback address
	// (server.ListenDebug), e.g. 127.0.0.1:6061; off by default.
	PprofAddr string `env:"ORDER_PPROF_ADDR"`
	// PaymentInternalURL is the payment service's internal listener, where reconciliation
	// asks how a charge ended.
	PaymentInternalURL string `env:"ORDER_PAYMENT_INTERNAL_URL" default:"https://localhost:8443"`
	// ReconcileInterval is how often reconciliation runs; ReconcileGrace how long after a
	// charge attempt went out its order is left to the checkout (more than
	// ORDER_PAYMENT_TIMEOUT, so an answer still on its way is never second-guessed).
	ReconcileInterval time.Duration `env:"ORDER_RECONCILE_INTERVAL" default:"1m"`
	ReconcileGrace    time.Duration `env:"ORDER_RECONCILE_GRACE" default:"2m"`
	// PaymentHold is how long an unpaid order keeps its stock before it expires;
	// ExpiryInterval how often the service looks for expired orders. MaxUnpaid caps a
	// shopper's unpaid orders; MaxLines and MaxQuantity bound one order. The defaults are
	// order.DefaultRules.
	PaymentHold    time.Duration `env:"ORDER_PAYMENT_HOLD" default:"15m"`
	ExpiryInterval time.Duration `env:"ORDER_EXPIRY_INTERVAL" default:"30s"`
	MaxUnpaid      int           `env:"ORDER_MAX_UNPAID" default:"3"`
	MaxLines       int           `env:"ORDER_MAX_LINES" default:"20"`
	MaxQuantity    int           `env:"ORDER_MAX_QUANTITY" default:"10"`
}

// rules are the order rules the configuration sets.
func (c *Config) rules() order.Rules {
	return order.Rules{MaxLines: c.MaxLines, MaxQuantity: c.MaxQuantity, PaymentHold: c.PaymentHold, MaxUnpaid: c.MaxUnpaid}
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
	if u, err := url.Parse(c.PaymentInternalURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("ORDER_PAYMENT_INTERNAL_URL = %q: must be an absolute https URL", c.PaymentInternalURL))
	}
	if c.TokenURL != "" {
		if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("ORDER_TOKEN_URL = %q: must be an http(s) URL", c.TokenURL))
		}
	}
	if c.ReconcileInterval <= 0 {
		errs = append(errs, errors.New("ORDER_RECONCILE_INTERVAL must be positive"))
	}
	if c.ReconcileGrace <= c.PaymentTimeout {
		errs = append(errs, fmt.Errorf("ORDER_RECONCILE_GRACE = %s: must be longer than ORDER_PAYMENT_TIMEOUT (%s)", c.ReconcileGrace, c.PaymentTimeout))
	}
	if c.PaymentHold < order.MinPaymentHold || c.PaymentHold > order.MaxPaymentHold {
		errs = append(errs, fmt.Errorf("ORDER_PAYMENT_HOLD = %s: must be between %s and %s", c.PaymentHold, order.MinPaymentHold, order.MaxPaymentHold))
	}
	if c.ExpiryInterval <= 0 || c.ExpiryInterval > time.Hour {
		errs = append(errs, fmt.Errorf("ORDER_EXPIRY_INTERVAL = %s: must be more than 0 and at most 1h", c.ExpiryInterval))
	}
	if c.MaxUnpaid < 1 || c.MaxUnpaid > order.MaxMaxUnpaid {
		errs = append(errs, fmt.Errorf("ORDER_MAX_UNPAID = %d: must be between 1 and %d", c.MaxUnpaid, order.MaxMaxUnpaid))
	}
	if c.MaxLines < 1 || c.MaxLines > order.MaxLines {
		errs = append(errs, fmt.Errorf("ORDER_MAX_LINES = %d: must be between 1 and %d", c.MaxLines, order.MaxLines))
	}
	if c.MaxQuantity < order.MinQuantity || c.MaxQuantity > order.MaxQuantity {
		errs = append(errs, fmt.Errorf("ORDER_MAX_QUANTITY = %d: must be between %d and %d", c.MaxQuantity, order.MinQuantity, order.MaxQuantity))
	}
	if c.PprofAddr != "" {
		if err := server.CheckDebugAddr(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("ORDER_PPROF_ADDR: %w", err))
		}
	}
	return errs
}

// Run starts the service and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log, closeLog := logging.New(os.Stdout, "order")
	defer closeLog()
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))
	stopTracing, err := telemetry.Setup(ctx, "order", getenv)
	if err != nil {
		return err
	}
	defer stopTracing()

	svc, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.close()
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

// service is the order service assembled from its configuration.
type service struct {
	public     *httpapi.API
	internal   *httpapi.Internal
	identity   *mtls.Identity
	reconciler *reconcile.Reconciler
	expirer    *expiry.Expirer
	store      *store.Store
}

// build assembles the service from cfg: it loads the service's certificate and opens (and
// migrates) the database. Nothing listens yet.
func build(ctx context.Context, cfg Config, log *slog.Logger) (*service, error) {
	identity, err := mtls.Load(mtls.Files{CA: cfg.TLSCA, Cert: cfg.TLSCert, Key: cfg.TLSKey})
	if err != nil {
		return nil, err
	}
	// Tokens addressed to the order service itself (the payment service's client-
	// credentials tokens) verify here too; the routes' policies then tell a service from a
	// user, answering 403 to the wrong kind of caller rather than 401.
	verifier, err := authn.NewVerifier(authn.Config{
		Issuer: cfg.OIDCIssuer, DiscoveryURL: cfg.OIDCDiscoveryURL, Audience: cfg.OIDCAudience,
		ExtraAudiences: []string{cfg.ClientID},
	})
	if err != nil {
		return nil, err
	}
	client := svcauth.Config{
		TokenURL: cfg.TokenURL, Issuer: cfg.OIDCIssuer, DiscoveryURL: cfg.OIDCDiscoveryURL,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
	}
	var exchange payment.Exchange
	if cfg.TokenExchange {
		exchange = svcauth.NewExchanger(client, cfg.PaymentAudience).Exchange
	}
	payments, err := payment.New(cfg.PaymentURL, cfg.PaymentTimeout, exchange)
	if err != nil {
		return nil, err
	}
	// The order service calls as itself, with its own client-credentials token (the token
	// endpoint found by discovery unless configured), and only the payment service may
	// answer: every internal certificate names localhost, so the host name alone would let
	// any service of the CA take the token.
	tokens := svcauth.TokenSource(ctx, client)
	lookup, err := payment.NewLookup(cfg.PaymentInternalURL,
		svcauth.NewClient(identity, mtls.ID("payment-service"), tokens, cfg.PaymentTimeout))
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, store.Config{Driver: cfg.DBDriver, DSN: cfg.DBDSN, Logger: log})
	if err != nil {
		return nil, err
	}
	return &service{
		public: httpapi.New(httpapi.Deps{
			Store:        db,
			Payments:     payments,
			Authenticate: verifier.Middleware(log),
			Logger:       log,
			MetricsFrom:  cfg.MetricsFrom,
			Rules:        cfg.rules(),
			// Not ready until tokens can be verified and the database answers. The payment
			// service is not a readiness check: the catalog and orders work without it, and
			// checkout answers 503 on its own while it is away.
			Ready: map[string]server.Check{"database": db.Ping, "token keys": verifier.Ready},
		}),
		internal: httpapi.NewInternal(httpapi.InternalDeps{Store: db, Authenticate: verifier.Middleware(log), Logger: log}),
		identity: identity,
		reconciler: reconcile.New(db, lookup, reconcile.Options{
			Grace: cfg.ReconcileGrace, Interval: cfg.ReconcileInterval, Actor: cfg.ClientID, Logger: log,
		}),
		expirer: expiry.New(db, expiry.Options{Interval: cfg.ExpiryInterval, Actor: cfg.ClientID, Logger: log}),
		store:   db,
	}, nil
}

// serve runs both listeners, the reconciliation and the expiry until ctx is cancelled or one of them
// fails, then stops the others. The internal listener speaks TLS 1.3 only and requires a
// client certificate from the internal CA.
func (s *service) serve(ctx context.Context, public, internal net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Serve(ctx, s.public.App, public) })
	g.Go(func() error {
		return server.Serve(ctx, s.internal.App, tls.NewListener(internal, s.identity.ServerConfig()))
	})
	g.Go(func() error { s.reconciler.Run(ctx); return nil })
	g.Go(func() error { s.expirer.Run(ctx); return nil })
	return g.Wait()
}

func (s *service) close() { _ = s.store.Close() }
