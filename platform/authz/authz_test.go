package authz_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/testkit"
)

var errNoSuchThing = errors.New("no such thing")

// things maps ids to owners; the Owner loader answers errNoSuchThing for unknown ids.
var things = map[string]string{"t-alice": "alice-sub", "t-bob": "bob-sub"}

func ownsThing(c *fiber.Ctx) (string, error) {
	owner, ok := things[c.Params("id")]
	if !ok {
		return "", errNoSuchThing
	}
	return owner, nil
}

func TestPolicyMatrix(t *testing.T) {
	iss := testkit.NewIssuer(t)
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(log, problem.Map{{Err: errNoSuchThing, Status: 404}})})
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	authz.Mount(app, v.Middleware(log), []authz.Route{
		{Method: "GET", Path: "/public", Policy: authz.Public, Handler: ok},
		{Method: "GET", Path: "/any", Policy: authz.Authenticated(), Handler: ok},
		{Method: "GET", Path: "/user", Policy: authz.Role("USER"), Handler: ok},
		{Method: "GET", Path: "/all", Policy: authz.Scope("admin:read"), Handler: ok},
		{Method: "GET", Path: "/either", Policy: authz.AnyOf(authz.Role("ADMIN"), authz.Scope("admin:read")), Handler: ok},
		{Method: "GET", Path: "/things/:id", Policy: authz.AdminOrOwner(ownsThing), Handler: ok},
	})

	alice := iss.Token(t, iss.User("alice-sub", "alice", "USER"))
	admin := iss.Token(t, iss.User("ada-sub", "ada", "USER", "ADMIN").With(testkit.Claims{"scope": "openid admin:read"}))
	adminNoScope := iss.Token(t, iss.User("ada-sub", "ada", "USER", "ADMIN"))
	service := iss.Token(t, iss.Service("order-service", testkit.Audience, "SERVICE"))

	cases := []struct {
		path, token string
		want        int
	}{
		{"/public", "", 200},
		{"/any", "", 401},
		{"/any", alice, 200},
		{"/user", "", 401},
		{"/user", alice, 200},
		{"/user", service, 403},
		{"/all", alice, 403},
		{"/all", adminNoScope, 403},
		{"/all", admin, 200},
		{"/either", alice, 403},
		{"/either", adminNoScope, 200},
		{"/things/t-alice", alice, 200},
		{"/things/t-bob", alice, 404}, // someone else's: not told it exists
		{"/things/t-none", alice, 404},
		{"/things/t-bob", adminNoScope, 200},
		{"/things/t-none", adminNoScope, 404},
		{"/things/t-alice", service, 404},
		{"/things/t-alice", "", 401},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want {
			body, _ := io.ReadAll(resp.Body)
			t.Errorf("%s: status %d, want %d: %s", tc.path, resp.StatusCode, tc.want, body)
		}
		if tc.path == "/all" && tc.want == 403 {
			if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="admin:read"`) {
				t.Errorf("%s: WWW-Authenticate %q", tc.path, h)
			}
		}
	}
}

func TestMountRefusesRouteWithoutPolicy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Mount accepted a route without a policy")
		}
	}()
	authz.Mount(fiber.New(), func(c *fiber.Ctx) error { return c.Next() }, []authz.Route{
		{Method: "GET", Path: "/forgotten", Handler: func(c *fiber.Ctx) error { return nil }},
	})
}

func TestPolicyNames(t *testing.T) {
	p := authz.AnyOf(authz.Role("ADMIN"), authz.Scope("admin:read"))
	if p.String() != "anyOf(role(ADMIN), scope(admin:read))" {
		t.Fatal(p.String())
	}
}
