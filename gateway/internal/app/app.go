// Package app assembles the gateway: configuration, the middleware chain every request
// passes, and one chain per route of the table, ending in the proxy.
//
// The order of the chain is the security design, so it is written out here in one place:
//
//	every request   request id, access log, recover          (platform/server)
//	                client address (trusted proxies)           edge.Forwarding
//	                security headers                           edge.SecurityHeaders
//	                method allowlist (TRACE, CONNECT: 405)     edge.Methods
//	                canonical path, else 400                   route.CanonicalOnly
//	                one Authorization header and no token in
//	                the query or a form body, else 400         authn.RefuseAmbiguous
//	                global deny list, else 403                 edge.IPRules
//	                CORS origin allowlist, else 403            edge.CORS
//	each route      route IP rules; admin-path allowlist       edge.IPRules
//	                header and body size, else 431 / 413       edge.Limits
//	                bearer or DPoP token (cached), else 401    tokencache + platform/authn
//	                token binding: a bound token needs a fresh
//	                proof of its key, every time, else 401     dpop (never cached)
//	                rate limit, else 429                       ratelimit
//	                route policy; ADMIN on admin paths, or 403 platform/authz
//	                forward with token relay                   proxy
//
// Nothing reaches an upstream unless every step before the proxy let it through; the
// tests prove each refusal with a fake upstream that counts what it saw.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/config"
	"example.com/shop/platform/dpop"
	"example.com/shop/platform/logging"
	"example.com/shop/platform/server"
	"example.com/shop/platform/telemetry"

	gwdpop "example.com/shop/gateway/internal/dpop"
	"example.com/shop/gateway/internal/edge"
	"example.com/shop/gateway/internal/proxy"
	"example.com/shop/gateway/internal/ratelimit"
	"example.com/shop/gateway/internal/route"
	"example.com/shop/gateway/internal/tokencache"
)

// Run starts the gateway and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log, closeLog := logging.New(os.Stdout, "gateway")
	defer closeLog()
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))
	stopTracing, err := telemetry.Setup(ctx, "gateway", getenv)
	if err != nil {
		return err
	}
	defer stopTracing()
	gw, err := New(cfg, Options{Logger: log})
	if err != nil {
		return err
	}
	defer gw.Close()
	// Fetch the realm's keys now rather than on the first request, so the first callers
	// are not the ones who wait. Keycloak may start later; the readiness probe and the
	// first token retry then.
	go func() {
		if err := gw.Verifier.Ready(ctx); err != nil {
			log.Warn("signing keys not fetched yet", "err", err.Error())
		}
	}()
	return server.ListenAndServe(ctx, gw.App, cfg.Addr)
}

// Options are the dependencies New would otherwise build from the Config; tests and
// benchmarks replace them.
type Options struct {
	Logger *slog.Logger
	// Routes is the route table; route.Table() when nil.
	Routes []route.Route
	// Limiter keeps the rate-limit buckets; built from Config (memory or Redis) when nil.
	Limiter ratelimit.Limiter
	// Verifier checks bearer tokens; built from the OIDC settings of Config when nil.
	Verifier *authn.Verifier
	// Replay remembers DPoP proof ids; built from Config (memory or Redis) when nil.
	Replay dpop.ReplayCache
}

// Gateway is an assembled gateway.
type Gateway struct {
	// App serves the gateway; run it with server.Serve.
	App *fiber.App
	// Verifier checks the bearer tokens.
	Verifier *authn.Verifier
	// Tokens is the cache of verified tokens; nil when disabled.
	Tokens *tokencache.Cache

	closers []func() error
}

// Close releases what New opened (the Redis client).
func (g *Gateway) Close() error {
	var first error
	for _, c := range g.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// New assembles the gateway for cfg, which must have passed config.Load.
func New(cfg Config, o Options) (*Gateway, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuration:\n%w", errors.Join(errs...))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Routes == nil {
		o.Routes = route.Table()
	}
	if err := route.Validate(o.Routes); err != nil {
		return nil, err
	}
	log := o.Logger
	gw := &Gateway{}

	verifier := o.Verifier
	if verifier == nil {
		v, err := authn.NewVerifier(authn.Config{Issuer: cfg.Issuer, DiscoveryURL: cfg.DiscoveryURL, Audience: cfg.Audience})
		if err != nil {
			return nil, err
		}
		verifier = v
	}
	gw.Verifier = verifier

	var shared *redis.Client
	if cfg.RedisURL != "" && (o.Limiter == nil || o.Replay == nil) {
		shared = newRedis(cfg.RedisURL)
		gw.closers = append(gw.closers, shared.Close)
	}
	if o.Limiter == nil {
		o.Limiter = ratelimit.NewMemory(0, nil)
		if shared != nil {
			o.Limiter = ratelimit.NewRedis(shared, "shop:gateway:ratelimit:", 250*time.Millisecond, log)
		}
	}
	if o.Replay == nil {
		// Replicas must share proof ids, or a proof replayed to another replica passes.
		o.Replay = dpop.NewMemory(0, nil)
		if shared != nil {
			o.Replay = gwdpop.NewRedis(shared, "shop:gateway:dpop:")
		}
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Replay: o.Replay})
	if err != nil {
		return nil, err
	}
	guard := gwdpop.New(proofs, cfg.DPoPClients, log)

	upstreams := map[route.Upstream]proxy.Target{}
	for name, base := range map[route.Upstream]string{route.Order: cfg.OrderURL, route.Payment: cfg.PaymentURL} {
		t, err := proxy.NewTarget(string(name), base)
		if err != nil {
			return nil, err
		}
		upstreams[name] = t
	}
	defaults := route.Limits{Rate: cfg.Rate, Burst: cfg.Burst, BodyBytes: cfg.BodyLimit, HeaderBytes: cfg.HeaderLimit}
	for _, r := range o.Routes {
		if _, ok := upstreams[r.Upstream]; !ok {
			return nil, fmt.Errorf("route %s: no upstream %q is configured", r.Name, r.Upstream)
		}
		if err := rateLimitPolicy(r, defaults).Validate(); err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
	}

	bodyMax, headerMax := cfg.BodyLimit, cfg.HeaderLimit
	for _, r := range o.Routes {
		bodyMax = max(bodyMax, r.Limits.BodyBytes)
		headerMax = max(headerMax, r.Limits.HeaderBytes)
	}

	app := server.New(server.Options{
		Name:      "gateway",
		Logger:    log,
		BodyLimit: bodyMax,
		Ready:     map[string]server.Check{"oidc": verifier.Ready},
		// Fiber's own view (c.Protocol(), used for HSTS) trusts the same peers as edge.Forwarding.
		TrustedProxies: cfg.TrustedProxies,
		MetricsFrom:    cfg.MetricsFrom,
		// An upstream may take UpstreamTimeout; the answer must still get out.
		WriteTimeout: cfg.UpstreamTimeout + 5*time.Second,
	})
	edge.Harden(app, edge.ServerOptions{ReadBufferSize: headerMax})
	gw.App = app

	trusted := edge.TrustedProxies(prefixes(cfg.TrustedProxies))
	// RefuseAmbiguous runs on every route, public ones too: the proxy forwards the query
	// and the Authorization headers as they are, so this is what keeps a second header or
	// a token in the URL from ever reaching an upstream (or its logs).
	app.Use(trusted.Forwarding(), edge.SecurityHeaders(), edge.Methods(route.ForwardedMethods), route.CanonicalOnly(),
		authn.RefuseAmbiguous())
	if deny := (edge.IPRules{Deny: prefixes(cfg.Deny)}); !deny.Empty() {
		app.Use(deny.Middleware(nil))
	}
	for _, h := range edge.CORS(cfg.CORSOrigins) {
		app.Use(h)
	}

	authenticate := []fiber.Handler{guard.Authenticate(verifier)}
	if cfg.TokenCache {
		gw.Tokens = tokencache.New(verifier, 0, nil)
		lookup, store := gw.Tokens.Middleware(authenticate[0])
		authenticate = []fiber.Handler{lookup, store}
	}
	// After the cache, on hits and misses alike: the cache vouches for a token, never for
	// the request carrying it, so a cached bound token still needs this request's proof.
	authenticate = append(authenticate, guard.Enforce)
	px := proxy.New(proxy.Options{Timeout: cfg.UpstreamTimeout, ConnectTimeout: cfg.ConnectTimeout, Logger: log})
	adminIPs := edge.IPRules{Allow: prefixes(cfg.AdminAllow)}

	for _, r := range o.Routes {
		chain := routeChain(r, chainParts{
			defaults: defaults, adminIPs: adminIPs, authenticate: authenticate,
			limiter: o.Limiter, forward: px.To(upstreams[r.Upstream]),
		})
		for _, m := range r.AllowedMethods() {
			app.Add(m, r.Pattern(), chain...).Name(r.Name)
		}
	}
	return gw, nil
}

// newRedis connects to the rate-limit Redis of a URL Validate has accepted. A limiter
// that waits on Redis adds its waits to every request, so timeouts are short; the
// limiter's in-memory fallback covers the rest.
func newRedis(url string) *redis.Client {
	opts, _ := redis.ParseURL(url)
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, 200*time.Millisecond, 200*time.Millisecond
	return redis.NewClient(opts)
}

type chainParts struct {
	defaults     route.Limits
	adminIPs     edge.IPRules
	authenticate []fiber.Handler
	limiter      ratelimit.Limiter
	forward      fiber.Handler
}

// rateLimitPolicy is the budget of a route: the shared "default" one, or one of its own,
// named after it, when the route sets a rate or burst.
func rateLimitPolicy(r route.Route, defaults route.Limits) ratelimit.Policy {
	if r.Limits.Rate == 0 && r.Limits.Burst == 0 {
		return ratelimit.Policy{Name: "default", Rate: defaults.Rate, Burst: defaults.Burst}
	}
	return ratelimit.Policy{Name: r.Name, Rate: orDefault(r.Limits.Rate, defaults.Rate), Burst: orDefault(r.Limits.Burst, defaults.Burst)}
}

// routeChain is the per-route half of the chain described in the package comment.
func routeChain(r route.Route, p chainParts) []fiber.Handler {
	lim := r.Limits
	var chain []fiber.Handler
	if !r.IPs.Empty() {
		chain = append(chain, r.IPs.Middleware(nil))
	}
	if !p.adminIPs.Empty() {
		chain = append(chain, p.adminIPs.Middleware(adminPath))
	}
	chain = append(chain, edge.Limits(orDefault(lim.HeaderBytes, p.defaults.HeaderBytes), orDefault(lim.BodyBytes, p.defaults.BodyBytes)))
	// Public routes take no token, except on admin paths, which always need one.
	needsToken := func(c *fiber.Ctx) bool { return !r.Policy.IsPublic() || adminPath(c) }
	for _, h := range p.authenticate {
		chain = append(chain, onlyIf(needsToken, h))
	}
	chain = append(chain,
		ratelimit.Middleware(p.limiter, rateLimitPolicy(r, p.defaults), callerKey),
		r.Policy.Handler(),
		onlyIf(adminPath, authz.Role(route.RoleAdmin).Handler()),
		p.forward,
	)
	return chain
}

// callerKey names the rate-limit bucket: the token's subject, or the client's address
// for anonymous calls (never an X-Forwarded-For the client wrote; see edge.Resolve).
func callerKey(c *fiber.Ctx) string {
	if p, ok := authn.PrincipalFrom(c); ok {
		return ratelimit.SubjectKey(p.Subject)
	}
	return ratelimit.IPKey(edge.ClientFrom(c).IP)
}

func adminPath(c *fiber.Ctx) bool { return route.IsAdmin(c.Path()) }

// onlyIf runs h when cond holds and otherwise passes the request on.
func onlyIf(cond func(*fiber.Ctx) bool, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !cond(c) {
			return c.Next()
		}
		return h(c)
	}
}

func orDefault[T int | float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
