package route_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"example.com/shop/platform/authz"

	"example.com/shop/gateway/internal/route"
)

func TestCanonical(t *testing.T) {
	good := []string{
		"/", "/api/orders", "/api/orders/3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f", "/api/orders/admin/all",
		"/api/public/products", "/api/payments/p-1/refunds", "/a.b/c_d/e~f", "/api/x..y",
	}
	for _, p := range good {
		if err := route.Canonical(p); err != nil {
			t.Errorf("Canonical(%q) = %v, want nil", p, err)
		}
	}
	bad := []struct {
		path string
		want error
	}{
		{"", route.ErrNotAbsolute},
		{"api/orders", route.ErrNotAbsolute},
		{"*", route.ErrNotAbsolute},
		{"/" + strings.Repeat("a", route.MaxPathBytes), route.ErrTooLong},
		{"//api/orders", route.ErrEmptySegment},
		{"/api//orders", route.ErrEmptySegment},
		{"/api/orders/", route.ErrEmptySegment},
		{"/api/./orders", route.ErrDotSegment},
		{"/api/orders/..", route.ErrDotSegment},
		{"/api/public/../admin/products", route.ErrDotSegment},
		{"/api/public/%2e%2e/admin/products", route.ErrPercent},
		{"/api/public/%2E%2E/admin/products", route.ErrPercent},
		{"/api/public/..%2fadmin/products", route.ErrPercent},
		{"/api/public%2f..%2fadmin%2fproducts", route.ErrPercent},
		{"/api/public/%252e%252e/admin/products", route.ErrPercent},
		{"/api/%61dmin/products", route.ErrPercent},
		{"/api/Admin/products", route.ErrUpperCase},
		{"/API/admin/products", route.ErrUpperCase},
		{"/api/public/..\\admin/products", route.ErrBadCharacter},
		{"/api/public\\..\\admin\\products", route.ErrBadCharacter},
		{"/api/admin;jsessionid=x/products", route.ErrBadCharacter},
		{"/api/admin/products;", route.ErrBadCharacter},
		{"/api/admin/products?x", route.ErrBadCharacter},
		{"/api/admin/products#x", route.ErrBadCharacter},
		{"/api/admin/pro ducts", route.ErrBadCharacter},
		{"/api/admin/products\x00", route.ErrBadCharacter},
		{"/api/admin/products\t", route.ErrBadCharacter},
		{"/api/\xc0\xaeadmin", route.ErrBadCharacter}, // overlong UTF-8 for "."
		{"/api/ａdmin", route.ErrBadCharacter},         // fullwidth a
		{"/api/admin/products:x", route.ErrBadCharacter},
		{"/api/admin/products+x", route.ErrBadCharacter},
	}
	for _, tc := range bad {
		if err := route.Canonical(tc.path); !errors.Is(err, tc.want) {
			t.Errorf("Canonical(%q) = %v, want %v", tc.path, err, tc.want)
		}
	}
}

func TestIsAdmin(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/admin/products":       true,
		"/api/admin/products/p-1":   true,
		"/api/orders/admin/all":     true,
		"/api/payments/admin/audit": true,
		"/api/public/admin":         true,
		"/api/orders/x/admin":       true,
		"/api/orders":               false,
		"/api/orders/administrator": false,
		"/api/orders/admins":        false,
		"/api/public/products":      false,
	} {
		if got := route.IsAdmin(path); got != want {
			t.Errorf("IsAdmin(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestTableFollowsContract walks every route of docs/api-contract.md through the table:
// the upstream it reaches and whether a token and the ADMIN role are needed.
func TestTableFollowsContract(t *testing.T) {
	table := route.Table()
	if err := route.Validate(table); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path string
		upstream     route.Upstream
		public       bool
		admin        bool
	}{
		{"GET", "/api/public/products", route.Order, true, false},
		{"GET", "/api/public/products/p-1", route.Order, true, false},
		{"POST", "/api/admin/products", route.Order, false, true},
		{"PUT", "/api/admin/products/p-1", route.Order, false, true},
		{"DELETE", "/api/admin/products/p-1", route.Order, false, true},
		{"POST", "/api/orders", route.Order, false, false},
		{"GET", "/api/orders", route.Order, false, false},
		{"GET", "/api/orders/o-1", route.Order, false, false},
		{"POST", "/api/orders/o-1/cancel", route.Order, false, false},
		{"POST", "/api/orders/o-1/pay", route.Order, false, false},
		{"DELETE", "/api/orders/o-1", route.Order, false, false},
		{"GET", "/api/orders/admin/all", route.Order, false, true},
		{"GET", "/api/orders/admin/audit", route.Order, false, true},
		{"POST", "/api/orders/o-1/refunded", route.Order, false, false},
		{"POST", "/api/payments", route.Payment, false, false},
		{"GET", "/api/payments", route.Payment, false, false},
		{"GET", "/api/payments/p-1", route.Payment, false, false},
		{"POST", "/api/payments/p-1/refunds", route.Payment, false, false},
		{"GET", "/api/payments/admin/all", route.Payment, false, true},
		{"GET", "/api/payments/admin/audit", route.Payment, false, true},
	}
	for _, tc := range cases {
		r, ok := route.Match(table, tc.path)
		if !ok {
			t.Errorf("%s %s: no route", tc.method, tc.path)
			continue
		}
		if r.Upstream != tc.upstream || r.Policy.IsPublic() != tc.public || route.IsAdmin(tc.path) != tc.admin {
			t.Errorf("%s %s: route %s upstream %s public %v admin %v", tc.method, tc.path, r.Name, r.Upstream, r.Policy.IsPublic(), route.IsAdmin(tc.path))
		}
		if !slices.Contains(r.AllowedMethods(), tc.method) {
			t.Errorf("%s %s: method not allowed on route %s", tc.method, tc.path, r.Name)
		}
	}
	for _, path := range []string{"/api/ordersx", "/api/admin", "/api/admin/users", "/api", "/api/public-x", "/healthz"} {
		if r, ok := route.Match(table, path); ok {
			t.Errorf("%s matched route %s; want no route", path, r.Name)
		}
	}
	if pub, _ := route.Match(table, "/api/public/products"); slices.Contains(pub.AllowedMethods(), "POST") {
		t.Error("the public catalog accepts POST; anonymous callers must not write")
	}
}

func TestValidateRefusesUnsafeTables(t *testing.T) {
	ok := route.Route{Name: "orders", Prefix: "/api/orders", Upstream: route.Order, Policy: authz.Authenticated()}
	cases := map[string]struct {
		routes []route.Route
		want   string
	}{
		"no policy":          {[]route.Route{{Name: "x", Prefix: "/api/x", Upstream: route.Order}}, "no policy"},
		"no name":            {[]route.Route{{Prefix: "/api/x", Upstream: route.Order, Policy: authz.Public}}, "no name"},
		"duplicate name":     {[]route.Route{ok, {Name: "orders", Prefix: "/api/x", Upstream: route.Order, Policy: authz.Public}}, "duplicate"},
		"non-canonical":      {[]route.Route{{Name: "x", Prefix: "/api/X/", Upstream: route.Order, Policy: authz.Public}}, "prefix"},
		"outside /api":       {[]route.Route{{Name: "x", Prefix: "/metrics", Upstream: route.Order, Policy: authz.Public}}, "not under /api/"},
		"nested prefix":      {[]route.Route{ok, {Name: "y", Prefix: "/api/orders/mine", Upstream: route.Order, Policy: authz.Public}}, "overlaps"},
		"no upstream":        {[]route.Route{{Name: "x", Prefix: "/api/x", Policy: authz.Public}}, "no upstream"},
		"TRACE":              {[]route.Route{{Name: "x", Prefix: "/api/x", Upstream: route.Order, Policy: authz.Public, Methods: []string{"TRACE"}}}, "never forwarded"},
		"sibling not nested": {[]route.Route{ok, {Name: "y", Prefix: "/api/ordersx", Upstream: route.Order, Policy: authz.Public}}, ""},
	}
	for name, tc := range cases {
		err := route.Validate(tc.routes)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}
