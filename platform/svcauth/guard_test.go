package svcauth_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/testkit"
)

// TestClientIDOf: the certificate of spiffe://shop/<name> goes with the Keycloak client
// <name>, for each service the realm has a client for; nothing else names a client.
func TestClientIDOf(t *testing.T) {
	for _, name := range []string{"order-service", "payment-service"} {
		if got, ok := svcauth.ClientIDOf(mtls.ID(name)); !ok || got != name {
			t.Errorf("ClientIDOf(%s) = %q %v, want %q", mtls.ID(name), got, ok, name)
		}
	}
	for _, id := range []string{
		"",
		"payment-service",
		"spiffe://shop/",
		"spiffe://other/payment-service",
		"spiffe://shop.evil/payment-service",
		"https://shop/payment-service",
		"spiffe://shop/ns/payment-service",
		"spiffe://shop/payment-service/",
		"spiffe://shop/payment-service?x=1",
		"spiffe://shop/payment-service#x",
	} {
		if got, ok := svcauth.ClientIDOf(id); ok {
			t.Errorf("ClientIDOf(%q) = %q, want none", id, got)
		}
	}
}

// serveGuarded serves the route table routes makes around h (which answers with the
// token's client) behind mutual TLS with id, as the payment service's internal listener
// does: tokens of iss addressed to the payment service verify.
func serveGuarded(t *testing.T, iss *testkit.Issuer, id *mtls.Identity, routes func(fiber.Handler) []svcauth.Route) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	verifier, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"payment-service"}})
	if err != nil {
		t.Fatal(err)
	}
	app := server.New(server.Options{Name: "payment-internal", Logger: log})
	svcauth.Mount(app, verifier.Middleware(log), routes(func(c *fiber.Ctx) error {
		p, _ := authn.PrincipalFrom(c)
		return c.SendString(p.ClientID)
	}))
	return testkit.ServeInternal(t, app, id)
}

// TestGuard: an internal route admits a caller only with an allowed certificate and that
// same service's own token with the SERVICE role. Every other combination is refused before
// the handler: 403 for a certificate the route does not allow, 401 without a valid token,
// 403 for a token without the role, and 403 when certificate and token belong to different
// services, even two that the route allows each on its own.
func TestGuard(t *testing.T) {
	iss := testkit.NewIssuer(t)
	p := testkit.NewPKI(t)
	var reached atomic.Int64
	base := serveGuarded(t, iss, p.Identity("payment-service"), func(h fiber.Handler) []svcauth.Route {
		counted := func(c *fiber.Ctx) error { reached.Add(1); return h(c) }
		return []svcauth.Route{
			{Method: fiber.MethodGet, Path: "/internal/payments", Callers: []string{mtls.ID("order-service")}, Handler: counted},
			{Method: fiber.MethodGet, Path: "/internal/audit", Callers: []string{mtls.ID("order-service"), mtls.ID("webapp")}, Handler: counted},
		}
	})
	clients := map[string]*http.Client{}
	for _, name := range []string{"order-service", "webapp"} {
		clients[name] = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: p.Identity(name).ClientConfigFor(mtls.ID("payment-service")),
		}}
	}
	service := func(client string, roles ...string) string {
		return iss.Token(t, iss.Service(client, "payment-service", roles...))
	}
	orderToken := service("order-service", svcauth.RoleService)

	for _, tc := range []struct {
		name, path, cert, token string
		status                  int
	}{
		{"the order service", "/internal/payments", "order-service", orderToken, 200},
		{"a certificate the route does not allow", "/internal/payments", "webapp", orderToken, 403},
		{"no token", "/internal/payments", "order-service", "", 401},
		{"a token for another audience", "/internal/payments", "order-service",
			iss.Token(t, iss.Service("order-service", "account", svcauth.RoleService)), 401},
		{"a token without the SERVICE role", "/internal/payments", "order-service", service("order-service"), 403},
		{"a shopper's token", "/internal/payments", "order-service", iss.Token(t, iss.User("alice-sub", "alice", "USER")), 403},
		{"another service's token", "/internal/payments", "order-service", service("webapp", svcauth.RoleService), 403},
		{"both allowed, each with its own token", "/internal/audit", "webapp", service("webapp", svcauth.RoleService), 200},
		{"both allowed, the order service's token on the webapp's certificate", "/internal/audit", "webapp", orderToken, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := clients[tc.cert].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ran := reached.Load() - before; (tc.status == 200) != (ran == 1) {
				t.Fatalf("the handler ran %d times", ran)
			}
			if tc.status == 200 && string(body) != tc.cert {
				t.Fatalf("the handler saw the token of %q, want %q", body, tc.cert)
			}
		})
	}
}

// TestGuardRefusesRoutesNoServiceCanCall: a route table that lists no caller, or a name
// where a SPIFFE id belongs, stops the service at start-up instead of serving a route that
// refuses everyone.
func TestGuardRefusesRoutesNoServiceCanCall(t *testing.T) {
	next := func(c *fiber.Ctx) error { return c.Next() }
	panics := func(name string, f func()) (msg string) {
		t.Helper()
		defer func() { msg, _ = recover().(string) }()
		f()
		t.Errorf("%s: no panic", name)
		return ""
	}
	if msg := panics("no caller", func() { svcauth.Guard(next) }); !strings.Contains(msg, "no caller") {
		t.Errorf("no caller: %q", msg)
	}
	if msg := panics("a bare name", func() { svcauth.Guard(next, "order-service") }); !strings.Contains(msg, `"order-service" is not a SPIFFE id`) {
		t.Errorf("a bare name: %q", msg)
	}
	msg := panics("Mount", func() {
		svcauth.Mount(fiber.New(), next, []svcauth.Route{{Method: fiber.MethodGet, Path: "/internal/x", Handler: next}})
	})
	if !strings.Contains(msg, "GET /internal/x") {
		t.Errorf("Mount's panic does not name the route: %q", msg)
	}
	if got := len(svcauth.Guard(next, mtls.ID("order-service"))); got != 4 {
		t.Errorf("Guard returned %d handlers, want the 4 checks", got)
	}
}
