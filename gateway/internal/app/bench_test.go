package app_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/config"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/testkit"

	"example.com/shop/gateway/internal/app"
	"example.com/shop/gateway/internal/route"
	"example.com/shop/gateway/internal/tokencache"
)

// The benchmarks call the Fiber handler in process with a reused fasthttp.RequestCtx, so
// they measure the gateway's own work per request; the proxy benchmark adds one real
// round trip over loopback to a minimal fasthttp upstream. Logs are written as JSON to
// io.Discard: formatting the access log is part of the real cost.
//
//	go test -run '^$' -bench . -benchmem ./gateway/internal/app/

var discard = slog.New(slog.NewJSONHandler(io.Discard, nil))

// serve runs handler on req until b.Loop stops, checking the status each time.
func serve(b *testing.B, handler fasthttp.RequestHandler, req *fasthttp.Request, want int) {
	b.Helper()
	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Init(req, remote, nil)
		handler(&ctx)
		if ctx.Response.StatusCode() != want {
			b.Fatalf("status %d, want %d: %s", ctx.Response.StatusCode(), want, ctx.Response.Body())
		}
	}
}

func get(uri, token string) *fasthttp.Request {
	req := new(fasthttp.Request)
	req.Header.SetMethod(fiber.MethodGet)
	req.SetRequestURI(uri)
	req.Header.SetHost("gateway.test")
	if token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
	}
	return req
}

// BenchmarkTokenCheck is authentication alone: the platform's verifier (signature, claims)
// against the token cache in front of it.
func BenchmarkTokenCheck(b *testing.B) {
	iss := testkit.NewIssuer(b)
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Ready(context.Background()); err != nil {
		b.Fatal(err)
	}
	token := iss.Token(b, iss.User("alice-sub", "alice", "USER"))
	verify := v.Middleware(discard)
	lookup, store := tokencache.New(v, 0, nil).Middleware(verify)
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(discard, nil)})
	ok := func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusNoContent) }
	app.Get("/uncached", verify, ok)
	app.Get("/cached", lookup, store, ok)
	handler := app.Handler()
	b.Run("uncached", func(b *testing.B) { serve(b, handler, get("/uncached", token), 204) })
	b.Run("cached", func(b *testing.B) { serve(b, handler, get("/cached", token), 204) })
}

// BenchmarkPolicy is authorisation alone on an admin path: the route's policy, then the
// ADMIN rule every admin path gets, for a principal already authenticated.
func BenchmarkPolicy(b *testing.B) {
	p := &authn.Principal{Subject: "ada-sub", Roles: []string{"USER", "ADMIN"}, Scopes: []string{"openid", "admin:read"}}
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(discard, nil)})
	admin := authz.Role(route.RoleAdmin).Handler()
	app.Get("/api/orders/*",
		func(c *fiber.Ctx) error { authn.WithPrincipal(c, p); return c.Next() },
		authz.Authenticated().Handler(),
		func(c *fiber.Ctx) error {
			if !route.IsAdmin(c.Path()) {
				return c.Next()
			}
			return admin(c)
		},
		func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusNoContent) })
	serve(b, app.Handler(), get("/api/orders/admin/all", ""), 204)
}

// BenchmarkProxyRoundTrip is the whole gateway: every middleware of the chain, then a
// round trip to a loopback upstream, with and without the token cache.
func BenchmarkProxyRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"o-1","status":"pending"}`)
	}}
	go func() { _ = upstream.Serve(ln) }()
	b.Cleanup(func() { _ = upstream.Shutdown() })

	iss := testkit.NewIssuer(b)
	token := iss.Token(b, iss.User("alice-sub", "alice", "USER"))
	for _, cache := range []string{"false", "true"} {
		name := map[string]string{"false": "uncached", "true": "cached"}[cache]
		b.Run(name, func(b *testing.B) {
			env := map[string]string{
				"OIDC_ISSUER": iss.URL, "GATEWAY_ORDER_URL": "http://" + ln.Addr().String(),
				"GATEWAY_RATE": "1e9", "GATEWAY_BURST": "1000000000", "GATEWAY_TOKEN_CACHE": cache,
			}
			var cfg app.Config
			if err := config.Load(func(k string) string { return maps.Clone(env)[k] }, &cfg); err != nil {
				b.Fatal(err)
			}
			gw, err := app.New(cfg, app.Options{Logger: discard})
			if err != nil {
				b.Fatal(err)
			}
			defer gw.Close()
			if err := gw.Verifier.Ready(context.Background()); err != nil {
				b.Fatal(err)
			}
			gw.App.Handler() // builds the route tree, as Listener would
			serve(b, gw.App.Server().Handler, get("/api/orders/o-1", token), 200)
		})
	}
}
