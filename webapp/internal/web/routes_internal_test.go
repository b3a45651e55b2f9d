package web

import (
	"strings"
	"testing"
)

// TestRouteTable reads the route table like a checklist: every route says who may use it,
// the admin console is admin-only, and what needs a user is never public.
func TestRouteTable(t *testing.T) {
	h := &handlers{}
	seen := map[string]bool{}
	for _, r := range h.routes() {
		key := r.method + " " + r.path
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
		if r.handler == nil {
			t.Errorf("%s has no handler", key)
		}
		switch {
		case strings.HasPrefix(r.path, "/admin"):
			if r.access != admin {
				t.Errorf("%s is %s, want admin", key, r.access)
			}
		case strings.HasPrefix(r.path, "/orders"), strings.HasPrefix(r.path, "/checkout"):
			if r.access != shopper {
				t.Errorf("%s is %s, want shopper", key, r.access)
			}
		default:
			if r.access != public {
				t.Errorf("%s is %s; only the shop's own pages are public", key, r.access)
			}
		}
	}
}
