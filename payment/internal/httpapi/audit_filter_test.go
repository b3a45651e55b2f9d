package httpapi_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"example.com/shop/platform/testkit"
)

// TestAuditFiltersAndPaging: the audit log narrows by action and actor and pages newest
// first, for the admin console; bad values are one 422 naming each; only admins read it.
func TestAuditFiltersAndPaging(t *testing.T) {
	iss := testkit.NewIssuer(t)
	toks := tokens(t, iss)
	e := newEnv(t, iss, toks)
	grace := iss.Token(t, iss.User("grace-sub", "grace", "USER", "ADMIN"))
	id, _ := e.paid(3000)
	for i, token := range []string{toks[admin], grace, toks[admin]} {
		r := e.call(req{method: "POST", path: "/api/payments/" + id + "/refunds", token: token,
			key: "refund-" + string(rune('a'+i)), body: map[string]any{"amount": 100 * (i + 1)}})
		if r.status != 201 {
			t.Fatalf("refund %d: %d %s", i, r.status, r.body)
		}
	}
	list := func(query string) []string {
		t.Helper()
		r := e.call(req{method: "GET", path: "/api/payments/admin/audit?" + query, as: admin})
		if r.status != 200 {
			t.Fatalf("?%s: %d %s", query, r.status, r.body)
		}
		var out []string
		for _, a := range r.list(t) {
			detail, _ := a["detail"].(map[string]any)
			out = append(out, fmt.Sprint(a["actor"].(map[string]any)["username"], ":", detail["amount"]))
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"ada:300", "grace:200", "ada:100"}},
		{"actor=ada", []string{"ada:300", "ada:100"}},
		{"actor=grace&action=payment.refund", []string{"grace:200"}},
		{"actor=nobody", nil},
		{"limit=1&offset=1", []string{"grace:200"}},
		{"actor=ada&limit=1&offset=1", []string{"ada:100"}},
	} {
		if got := list(c.query); !slices.Equal(got, c.want) {
			t.Errorf("?%s: %v, want %v", c.query, got, c.want)
		}
	}

	r := e.call(req{method: "GET", path: "/api/payments/admin/audit?action=payment.charge&actor=" + strings.Repeat("x", 256) + "&limit=0", as: admin})
	if r.status != 422 {
		t.Fatalf("bad filters: %d %s", r.status, r.body)
	}
	var fields []string
	for _, f := range r.problem(t).Errors {
		fields = append(fields, f.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{"action", "actor", "limit"}) {
		t.Fatalf("422 names %v, want action, actor and limit", fields)
	}

	for _, who := range []caller{owner, otherShopper, serviceAcct, anonymous} {
		r := e.call(req{method: "GET", path: "/api/payments/admin/audit?actor=ada", as: who})
		if (r.status != 401 && r.status != 403) || strings.Contains(string(r.body), "payment.refund") {
			t.Errorf("%s: %d %s, want a refusal that shows nothing", who, r.status, r.body)
		}
	}
}
