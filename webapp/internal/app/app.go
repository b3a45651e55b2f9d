// Package app wires the webapp together: configuration, sessions, the OIDC client, the API
// client and the pages, on the shop's common server bootstrap.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/config"
	"example.com/shop/platform/logging"
	"example.com/shop/platform/server"
	"example.com/shop/platform/telemetry"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
	"example.com/shop/webapp/internal/web"
)

// Config is the webapp's configuration, from environment variables.
type Config struct {
	Addr string `env:"WEBAPP_ADDR" default:":8080"`
	// PublicURL is the webapp's URL as browsers see it. The realm's redirect and
	// post-logout URIs are built from it, and an https URL turns on Secure, __Host- cookies.
	PublicURL string `env:"WEBAPP_PUBLIC_URL" default:"http://localhost:8080"`
	// Issuer is the realm URL browsers use; tokens name it as `iss`.
	Issuer string `env:"OIDC_ISSUER" required:"true"`
	// DiscoveryURL is where this server reaches the realm when that differs from Issuer
	// (container networks); empty means Issuer.
	DiscoveryURL string `env:"OIDC_DISCOVERY_URL"`
	// Audience is the audience of the API's access tokens.
	Audience string `env:"OIDC_AUDIENCE" default:"shop-api"`
	ClientID string `env:"WEBAPP_CLIENT_ID" default:"webapp"`
	// ClientKeyFile holds the private keys (PEM, PKCS #8, ECDSA P-256; the first signs)
	// the webapp authenticates to Keycloak with (private_key_jwt). Every replica must load
	// the same file, since the realm trusts the keys the JWKS endpoint lists. Empty: a key
	// generated at start, for one process on plain HTTP only.
	ClientKeyFile  string        `env:"WEBAPP_CLIENT_KEY_FILE"`
	GatewayURL     string        `env:"WEBAPP_GATEWAY_URL" default:"http://localhost:8000"`
	GatewayTimeout time.Duration `env:"WEBAPP_GATEWAY_TIMEOUT" default:"10s"`
	// RedisURL selects Redis for sessions (redis://host:6379/0); empty keeps them in memory.
	// It may hold a password, so it is masked in the log.
	RedisURL    string        `env:"WEBAPP_REDIS_URL" secret:"true"`
	SessionIdle time.Duration `env:"WEBAPP_SESSION_IDLE" default:"30m"`
	SessionMax  time.Duration `env:"WEBAPP_SESSION_MAX" default:"10h"`
	// MetricsFrom are the networks that may read /metrics (the Prometheus scraper's
	// addresses); empty: loopback only. Others get 404.
	MetricsFrom []netip.Prefix `env:"WEBAPP_METRICS_FROM"`
}

// Validate implements config.Validator: every problem at once.
func (c *Config) Validate() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	pub, err := url.Parse(c.PublicURL)
	check(err == nil && (pub.Scheme == "http" || pub.Scheme == "https") && pub.Host != "" && strings.Trim(pub.Path, "/") == "" && pub.RawQuery == "",
		"WEBAPP_PUBLIC_URL = %q: want the site's origin, e.g. https://shop.example.com", c.PublicURL)
	for name, v := range map[string]string{"OIDC_ISSUER": c.Issuer, "OIDC_DISCOVERY_URL": c.DiscoveryURL, "WEBAPP_GATEWAY_URL": c.GatewayURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "%s = %q: not an http(s) URL", name, v)
	}
	check(c.SessionIdle > 0, "WEBAPP_SESSION_IDLE must be positive")
	check(c.SessionMax >= c.SessionIdle, "WEBAPP_SESSION_MAX (%s) must not be shorter than WEBAPP_SESSION_IDLE (%s)", c.SessionMax, c.SessionIdle)
	check(c.GatewayTimeout > 0, "WEBAPP_GATEWAY_TIMEOUT must be positive")
	check(!(c.Secure() && c.ClientKeyFile == ""),
		"WEBAPP_CLIENT_KEY_FILE is required when serving over https: replicas must share the keys the realm trusts")
	return errs
}

// Secure reports whether the webapp is served over HTTPS.
func (c *Config) Secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Run starts the webapp and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log, closeLog := logging.New(os.Stdout, "webapp")
	defer closeLog()
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))
	stopTracing, err := telemetry.Setup(ctx, "webapp", getenv)
	if err != nil {
		return err
	}
	defer stopTracing()
	app, closeFn, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return server.ListenAndServe(ctx, app, cfg.Addr)
}

// New builds the webapp's Fiber app from cfg; the returned function releases what it
// opened (the session backend).
func New(ctx context.Context, cfg Config, log *slog.Logger) (*fiber.App, func(), error) {
	var backend session.Backend
	if cfg.RedisURL != "" {
		r, err := session.NewRedis(ctx, cfg.RedisURL)
		if err != nil {
			return nil, nil, err
		}
		backend = r
	} else {
		backend = session.NewMemory()
	}
	closeFn := func() { _ = backend.Close() }
	fail := func(err error) (*fiber.App, func(), error) {
		closeFn()
		return nil, nil, err
	}

	// Keycloak's token endpoint (the code exchange, refreshes) is called inside the
	// shopper's request: its span belongs to the request's trace.
	httpClient := telemetry.Client(&http.Client{Timeout: 10 * time.Second})
	access, err := authn.NewVerifier(authn.Config{
		Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL, Audience: cfg.Audience, HTTPClient: httpClient,
	})
	if err != nil {
		return fail(err)
	}
	keys, err := clientKeys(cfg.ClientKeyFile, log)
	if err != nil {
		return fail(err)
	}
	oidc, err := auth.New(auth.Config{
		Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL, ClientID: cfg.ClientID, Keys: keys,
		PublicURL: cfg.PublicURL, AccessTokens: access, HTTPClient: httpClient,
	})
	if err != nil {
		return fail(err)
	}
	api, err := gateway.New(cfg.GatewayURL, cfg.GatewayTimeout)
	if err != nil {
		return fail(err)
	}
	sessions := session.NewManager(session.Config{
		Backend: backend, Idle: cfg.SessionIdle, Max: cfg.SessionMax, Secure: cfg.Secure(), Log: log,
	})
	app := server.New(server.Options{
		Name: "webapp", Logger: log, MetricsFrom: cfg.MetricsFrom,
		// Sessions must be usable to serve any page; Keycloak and the gateway are not
		// checked: the catalog works without Keycloak and pages explain a gateway outage.
		Ready: map[string]server.Check{"sessions": sessions.Ping},
	})
	if err := web.Mount(app, web.Deps{
		Log: log, Sessions: sessions, Auth: oidc, API: api,
		Issuer: cfg.Issuer, Secure: cfg.Secure(), SessionIdle: cfg.SessionIdle,
	}); err != nil {
		return fail(err)
	}
	return app, closeFn, nil
}

// clientKeys loads the private_key_jwt keys from file, or generates one when file is
// empty (development: a single process, whose key the realm fetches from its JWKS).
func clientKeys(file string, log *slog.Logger) (*auth.ClientKeys, error) {
	if file == "" {
		log.Warn("WEBAPP_CLIENT_KEY_FILE is not set: authenticating to Keycloak with a key generated now; fine for one process, not for replicas")
		return auth.GenerateClientKeys()
	}
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("WEBAPP_CLIENT_KEY_FILE: %w", err)
	}
	keys, err := auth.ParseClientKeys(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("WEBAPP_CLIENT_KEY_FILE %s: %w", file, err)
	}
	return keys, nil
}
