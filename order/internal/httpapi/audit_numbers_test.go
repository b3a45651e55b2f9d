package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"example.com/shop/order/internal/order"
)

// numbered is the part of an order answer these tests read.
type numbered struct {
	ID     string `json:"id"`
	Number int64  `json:"number"`
}

// TestOrderNumbersThroughTheAPI: shoppers placing orders at the same moment each get their
// own number in the answer, and an admin's search by number finds exactly that order.
func TestOrderNumbersThroughTheAPI(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	const shoppers = 10
	placed := make([]numbered, shoppers)
	var wg sync.WaitGroup
	for i := range shoppers {
		wg.Go(func() {
			resp := e.do(http.MethodPost, "/api/orders", r.shopper(t, "shopper"+strconv.Itoa(i)),
				`{"items":[{"productId":"`+towelID+`","quantity":1}]}`)
			if resp.status != http.StatusCreated {
				t.Errorf("shopper %d: %s", i, resp)
				return
			}
			resp.decode(t, &placed[i])
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	numbers := make([]int64, 0, shoppers)
	for _, o := range placed {
		numbers = append(numbers, o.Number)
	}
	slices.Sort(numbers)
	if numbers[0] < 10001 || len(slices.Compact(numbers)) != shoppers {
		t.Fatalf("numbers of %d concurrent orders: %v, want all different, from 10001", shoppers, numbers)
	}
	for _, want := range placed[:3] {
		var found []numbered
		resp := e.do(http.MethodGet, "/api/orders/admin/all?number="+strconv.FormatInt(want.Number, 10), r.admin, nil)
		if resp.status != http.StatusOK {
			t.Fatal(resp)
		}
		resp.decode(t, &found)
		if len(found) != 1 || found[0] != want {
			t.Fatalf("search for number %d: %s, want order %s only", want.Number, resp.body, want.ID)
		}
	}
}

// TestOrderNumberSearchRefusals: the search is for admins with admin:read only, and a value
// that is not an order number is a 422 naming the field.
func TestOrderNumberSearchRefusals(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	var mine numbered
	e.do(http.MethodGet, "/api/orders/"+o.ID, r.alice, nil).decode(t, &mine)
	path := "/api/orders/admin/all?number=" + strconv.FormatInt(mine.Number, 10)
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"its own shopper", r.alice, http.StatusForbidden},
		{"another shopper", r.bob, http.StatusForbidden},
		{"an admin without admin:read", r.adminNoScope, http.StatusForbidden},
	} {
		resp := e.do(http.MethodGet, path, c.token, nil)
		if resp.status != c.want || strings.Contains(string(resp.body), o.ID) {
			t.Errorf("%s: %s, want %d and no order", c.name, resp, c.want)
		}
		resp.problem(t)
	}
	for _, bad := range []string{"abc", "0", "-5", "10001.5", "99999999999999999999", "%2010001"} {
		resp := e.do(http.MethodGet, "/api/orders/admin/all?number="+bad, r.admin, nil)
		if resp.status != http.StatusUnprocessableEntity {
			t.Errorf("number=%s: %s, want 422", bad, resp)
			continue
		}
		if p := resp.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "number" {
			t.Errorf("number=%s: %+v, want the field number named", bad, p)
		}
	}
}

// TestAuditFiltersAndPaging: the audit API narrows by action and actor and pages newest
// first; every bad value is named in one 422; only admins may read it.
func TestAuditFiltersAndPaging(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	grace := r.iss.Token(t, r.iss.User("grace-sub", "grace", "USER", "ADMIN"))
	act := func(token, method, path, body string, want int) {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		if resp := e.do(method, path, token, b); resp.status != want {
			t.Fatalf("%s %s: %s", method, path, resp)
		}
	}
	var p struct{ ID string }
	e.do(http.MethodPost, "/api/admin/products", r.admin, `{"name":"Teapot","price":{"amount":4200,"currency":"EUR"},"stock":5}`).decode(t, &p)
	act(grace, http.MethodPut, "/api/admin/products/"+p.ID, `{"name":"Teapot","price":{"amount":3900,"currency":"EUR"},"stock":5}`, 200)
	act(r.admin, http.MethodPut, "/api/admin/products/"+p.ID, `{"name":"Teapot","price":{"amount":3500,"currency":"EUR"},"stock":5}`, 200)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	act(grace, http.MethodDelete, "/api/orders/"+o.ID, "", 204)

	list := func(query string) []string {
		t.Helper()
		var log []auditOf
		resp := e.do(http.MethodGet, "/api/orders/admin/audit?"+query, r.admin, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("?%s: %s", query, resp)
		}
		resp.decode(t, &log)
		var out []string
		for _, l := range log {
			out = append(out, l.Actor.Username+" "+l.Action)
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"grace order.delete", "ada product.update", "grace product.update", "ada product.create"}},
		{"action=product.update", []string{"ada product.update", "grace product.update"}},
		{"actor=grace", []string{"grace order.delete", "grace product.update"}},
		{"actor=ada&action=product.create", []string{"ada product.create"}},
		{"actor=nobody", nil},
		{"limit=2", []string{"grace order.delete", "ada product.update"}},
		{"limit=2&offset=2", []string{"grace product.update", "ada product.create"}},
		{"limit=2&offset=4", nil},
	} {
		if got := list(c.query); !slices.Equal(got, c.want) {
			t.Errorf("?%s: %v, want %v", c.query, got, c.want)
		}
	}

	// The delete's entry names the order by its number, for the console to show.
	var log []auditOf
	e.do(http.MethodGet, "/api/orders/admin/audit?action=order.delete", r.admin, nil).decode(t, &log)
	var deleted numbered
	deleted.Number = int64(log[0].Detail["number"].(float64))
	if deleted.Number < 10001 {
		t.Fatalf("delete detail %+v: no order number", log[0].Detail)
	}

	resp := e.do(http.MethodGet, "/api/orders/admin/audit?action=order.drop&actor="+strings.Repeat("x", 256)+"&limit=0&offset=-1", r.admin, nil)
	if resp.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad filters: %s, want 422", resp)
	}
	var fields []string
	for _, f := range resp.problem(t).Errors {
		fields = append(fields, f.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{"action", "actor", "limit", "offset"}) {
		t.Fatalf("422 names %v, want action, actor, limit and offset", fields)
	}

	// Shoppers and anonymous callers are refused, filters or not, and learn nothing.
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"a shopper", r.alice, http.StatusForbidden},
		{"the payment service", r.service, http.StatusForbidden},
		{"anonymous", "", http.StatusUnauthorized},
	} {
		resp := e.do(http.MethodGet, "/api/orders/admin/audit?"+url.Values{"actor": {"ada"}}.Encode(), c.token, nil)
		if resp.status != c.want || strings.Contains(string(resp.body), "product.create") {
			t.Errorf("%s: %s, want %d", c.name, resp, c.want)
		}
		resp.problem(t)
	}
}
