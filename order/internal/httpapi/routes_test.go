package httpapi_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"

	"example.com/shop/platform/authz"
)

// probes are the platform's routes, the only ones allowed outside the table: they serve
// no data and need no token.
var probes = []string{"/healthz", "/readyz", "/metrics"}

// unlisted returns what is wrong between the routes registered on app and the table: a
// route registered outside the table, a table route not registered, or a registered
// route whose handler chain is not authenticate -> policy -> handler (or the bare handler
// of a public route).
func unlisted(app *fiber.App, table []authz.Route) []string {
	byKey := map[string]authz.Route{}
	for _, rt := range table {
		byKey[rt.Method+" "+rt.Path] = rt
	}
	var problems []string
	seen := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if slices.Contains(probes, r.Path) {
			continue
		}
		key := r.Method + " " + r.Path
		if r.Method == fiber.MethodHead {
			// Fiber serves HEAD for every GET, through the same handler chain.
			key = fiber.MethodGet + " " + r.Path
		}
		rt, ok := byKey[key]
		if !ok {
			problems = append(problems, r.Method+" "+r.Path+" is registered but not in the route table")
			continue
		}
		seen[key] = true
		want := 3 // authenticate, policy, handler
		if rt.Policy.IsPublic() {
			want = 1
		}
		if len(r.Handlers) != want {
			problems = append(problems, key+" runs "+strconv.Itoa(len(r.Handlers))+" handlers, want authenticate, policy, handler")
		}
	}
	for key := range byKey {
		if !seen[key] {
			problems = append(problems, key+" is in the table but not registered")
		}
	}
	return problems
}

// TestEveryRegisteredRouteIsInTheTable: nothing reaches the app around the route table, so
// no route can be served without its policy.
func TestEveryRegisteredRouteIsInTheTable(t *testing.T) {
	e := newEnv(t, newRealm(t))
	if problems := unlisted(e.api.App, e.api.Routes); len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
	// The check catches a route added behind the table's back.
	e.api.App.Get("/api/orders/export", func(c *fiber.Ctx) error { return c.SendString("everything") })
	problems := unlisted(e.api.App, e.api.Routes)
	if len(problems) != 2 || !strings.HasPrefix(problems[0], "GET /api/orders/export") || !strings.HasPrefix(problems[1], "HEAD /api/orders/export") {
		t.Fatalf("a route outside the table went unnoticed: %v", problems)
	}
}

// openAPI is the part of api/openapi.yaml the route table is checked against.
type openAPI struct {
	Paths map[string]map[string]yaml.Node `yaml:"paths"`
}

type operation struct {
	Policy   string                 `yaml:"x-policy"`
	Security *[]map[string][]string `yaml:"security"`
}

var pathParam = regexp.MustCompile(`:(\w+)`)

// TestOpenAPIMatchesTheRouteTable: api/openapi.yaml describes exactly the routes of the
// table, each with the table's policy, and only public routes drop the bearer requirement.
func TestOpenAPIMatchesTheRouteTable(t *testing.T) {
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec openAPI
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	documented := map[string]operation{}
	for path, item := range spec.Paths {
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			documented[strings.ToUpper(method)+" "+path] = op
		}
	}
	e := newEnv(t, newRealm(t))
	for _, rt := range e.api.Routes {
		key := rt.Method + " " + pathParam.ReplaceAllString(rt.Path, "{$1}")
		op, ok := documented[key]
		if !ok {
			t.Errorf("%s is in the route table but not in openapi.yaml", key)
			continue
		}
		delete(documented, key)
		if op.Policy != rt.Policy.String() {
			t.Errorf("%s: openapi.yaml says x-policy %q, the table %q", key, op.Policy, rt.Policy)
		}
		public := op.Security != nil && len(*op.Security) == 0
		if public != rt.Policy.IsPublic() {
			t.Errorf("%s: openapi.yaml public=%v, the table public=%v", key, public, rt.Policy.IsPublic())
		}
	}
	for key := range documented {
		t.Errorf("%s is in openapi.yaml but not in the route table", key)
	}
}
