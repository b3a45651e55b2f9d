package app

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"example.com/shop/gateway/internal/edge"
	"example.com/shop/gateway/internal/proxy"
	"example.com/shop/gateway/internal/route"
	"example.com/shop/platform/config"
)

// Config is the gateway's configuration, from environment variables (platform/config).
type Config struct {
	Addr string `env:"GATEWAY_ADDR" default:":8000"`

	// Issuer is the `iss` every token must carry; DiscoveryURL, when set, is where keys
	// are fetched from inside a container network; Audience is the API's audience.
	Issuer       string `env:"OIDC_ISSUER" required:"true"`
	DiscoveryURL string `env:"OIDC_DISCOVERY_URL"`
	Audience     string `env:"OIDC_AUDIENCE" default:"shop-api"`

	OrderURL   string `env:"GATEWAY_ORDER_URL" default:"http://localhost:8081"`
	PaymentURL string `env:"GATEWAY_PAYMENT_URL" default:"http://localhost:8082"`
	// UpstreamTimeout bounds a whole upstream exchange; ConnectTimeout the connect alone.
	UpstreamTimeout time.Duration `env:"GATEWAY_UPSTREAM_TIMEOUT" default:"10s"`
	ConnectTimeout  time.Duration `env:"GATEWAY_CONNECT_TIMEOUT" default:"2s"`

	// RedisURL (redis:// or rediss://) shares rate-limit budgets between replicas; empty
	// keeps them in memory. It may carry a password, so it is masked in logs.
	RedisURL string `env:"GATEWAY_REDIS_URL" secret:"true"`
	// Rate is the default sustained requests per second per caller; Burst the bucket.
	Rate  float64 `env:"GATEWAY_RATE" default:"10"`
	Burst int     `env:"GATEWAY_BURST" default:"20"`

	// TrustedProxies (CIDRs) may set X-Forwarded-For/Proto/Host; nobody else can.
	TrustedProxies []string `env:"GATEWAY_TRUSTED_PROXIES"`
	// Deny (CIDRs) is refused everywhere; AdminAllow (CIDRs) alone may reach admin paths
	// (empty: any address).
	Deny       []string `env:"GATEWAY_DENY"`
	AdminAllow []string `env:"GATEWAY_ADMIN_ALLOW"`
	// CORSOrigins are the browser origins allowed to call the API (exact, comma-separated).
	CORSOrigins []string `env:"GATEWAY_CORS_ORIGINS"`
	// MetricsFrom are the networks that may read /metrics (the Prometheus scraper's
	// addresses); empty: loopback only. Others get 404.
	MetricsFrom []netip.Prefix `env:"GATEWAY_METRICS_FROM"`

	// BodyLimit and HeaderLimit are the default request size limits in bytes.
	BodyLimit   int `env:"GATEWAY_BODY_LIMIT" default:"1048576"`
	HeaderLimit int `env:"GATEWAY_HEADER_LIMIT" default:"8192"`

	// TokenCache keeps verified tokens until their expiry (see internal/tokencache).
	TokenCache bool `env:"GATEWAY_TOKEN_CACHE" default:"true"`
	// DPoPClients are the OAuth clients (`azp`) whose tokens must be DPoP-bound: their
	// unbound tokens are refused. A bound token needs its proof whatever the client.
	DPoPClients []string `env:"GATEWAY_DPOP_CLIENTS" default:"webapp"`
}

// Validate implements config.Validator: every problem of the values at once.
func (c *Config) Validate() []error {
	var errs []error
	for _, l := range []struct {
		name string
		list []string
	}{{"GATEWAY_TRUSTED_PROXIES", c.TrustedProxies}, {"GATEWAY_DENY", c.Deny}, {"GATEWAY_ADMIN_ALLOW", c.AdminAllow}} {
		if _, perrs := config.ParsePrefixes(l.list); len(perrs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %w", l.name, errors.Join(perrs...)))
		}
	}
	if oerrs := edge.ValidateOrigins(c.CORSOrigins); len(oerrs) > 0 {
		errs = append(errs, fmt.Errorf("GATEWAY_CORS_ORIGINS: %w", errors.Join(oerrs...)))
	}
	if _, err := proxy.NewTarget(string(route.Order), c.OrderURL); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_ORDER_URL: %w", err))
	}
	if _, err := proxy.NewTarget(string(route.Payment), c.PaymentURL); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_PAYMENT_URL: %w", err))
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			// The parser's message can quote the URL, password included.
			errs = append(errs, errors.New("GATEWAY_REDIS_URL is not a redis:// or rediss:// URL"))
		}
	}
	if c.Rate <= 0 {
		errs = append(errs, errors.New("GATEWAY_RATE must be positive (requests per second)"))
	}
	if c.Burst < 1 {
		errs = append(errs, errors.New("GATEWAY_BURST must be at least 1"))
	}
	if c.BodyLimit < 1 || c.BodyLimit > maxBodyLimit {
		errs = append(errs, fmt.Errorf("GATEWAY_BODY_LIMIT must be within 1..%d bytes", maxBodyLimit))
	}
	if c.HeaderLimit < 1024 || c.HeaderLimit > maxHeaderLimit {
		errs = append(errs, fmt.Errorf("GATEWAY_HEADER_LIMIT must be within 1024..%d bytes", maxHeaderLimit))
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, errors.New("GATEWAY_UPSTREAM_TIMEOUT must be positive"))
	}
	if c.ConnectTimeout <= 0 || c.ConnectTimeout > c.UpstreamTimeout {
		errs = append(errs, errors.New("GATEWAY_CONNECT_TIMEOUT must be positive and at most GATEWAY_UPSTREAM_TIMEOUT"))
	}
	return errs
}

// Ceilings of the configurable limits: the socket-level limits are set from the largest
// route limit, and they hold memory per connection.
const (
	maxBodyLimit   = 64 << 20
	maxHeaderLimit = 64 << 10
)

// prefixes parses a list Validate has already accepted.
func prefixes(list []string) []netip.Prefix {
	p, _ := config.ParsePrefixes(list)
	return p
}
