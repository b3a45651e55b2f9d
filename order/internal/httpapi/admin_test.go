package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
)

type auditOf struct {
	ID    int64     `json:"id"`
	At    time.Time `json:"at"`
	Actor struct {
		Subject  string `json:"subject"`
		Username string `json:"username"`
	} `json:"actor"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	Detail    map[string]any `json:"detail"`
	RequestID string         `json:"requestId"`
}

// TestAdminActionsAreAudited: every admin action lands in the audit log with who, what,
// when and the request id; the owner's own deletes and no-op retires do not.
func TestAdminActionsAreAudited(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	step := func(method, path, body, reqID string, want int) response {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		resp := e.do(method, path, r.admin, b, "X-Request-Id", reqID)
		if resp.status != want {
			t.Fatalf("%s %s: %s", method, path, resp)
		}
		return resp
	}
	var p struct{ ID string }
	step(http.MethodPost, "/api/admin/products", `{"name":"Teapot","price":{"amount":4200,"currency":"EUR"},"stock":5}`, "req-create", 201).decode(t, &p)
	step(http.MethodPut, "/api/admin/products/"+p.ID, `{"name":"Teapot","price":{"amount":3900,"currency":"EUR"},"stock":5}`, "req-update", 200)
	step(http.MethodDelete, "/api/admin/products/"+p.ID, "", "req-retire", 204)
	step(http.MethodDelete, "/api/admin/products/"+p.ID, "", "req-retire-again", 204)
	own := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	if resp := e.do(http.MethodDelete, "/api/orders/"+own.ID, r.alice, nil); resp.status != 204 {
		t.Fatal(resp)
	}
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	step(http.MethodDelete, "/api/orders/"+o.ID, "", "req-delete", 204)

	var log []auditOf
	step(http.MethodGet, "/api/orders/admin/audit", "", "req-list", 200).decode(t, &log)
	want := []struct{ action, resource, requestID string }{
		{order.ActionOrderDelete, "order/" + o.ID, "req-delete"},
		{order.ActionProductRetire, "product/" + p.ID, "req-retire"},
		{order.ActionProductUpdate, "product/" + p.ID, "req-update"},
		{order.ActionProductCreate, "product/" + p.ID, "req-create"},
	}
	if len(log) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(log), len(want), log)
	}
	for i, w := range want {
		got := log[i]
		if got.Action != w.action || got.Resource != w.resource || got.RequestID != w.requestID ||
			got.Actor.Subject != r.adminSub || got.Actor.Username != "ada" || time.Since(got.At) > time.Minute {
			t.Errorf("entry %d: %+v, want %+v", i, got, w)
		}
	}
	changes, _ := log[2].Detail["changes"].(map[string]any)
	price, _ := changes["price"].(map[string]any)
	if len(changes) != 1 || price == nil {
		t.Fatalf("update detail %+v: want only the price change", log[2].Detail)
	}
	if log[0].Detail["ownerSubject"] != r.aliceSub || log[0].Detail["status"] != "pending" {
		t.Fatalf("delete detail %+v", log[0].Detail)
	}
}

func TestProductValidation(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	before := e.snapshot()
	for body, want := range map[string]int{
		`{"name":"x","price":{"amount":100,"currency":"EUR"}}`:                      422, // no stock
		`{"name":"  ","price":{"amount":100,"currency":"EUR"},"stock":1}`:           422,
		`{"name":"x","price":{"amount":0,"currency":"EUR"},"stock":1}`:              422,
		`{"name":"x","price":{"amount":100,"currency":"USD"},"stock":1}`:            422,
		`{"name":"x","price":{"amount":100,"currency":"EUR"},"stock":-1}`:           422,
		`{"name":"a\u0000b","price":{"amount":100,"currency":"EUR"},"stock":1}`:     422,
		`{"name":"x","price":{"amount":"100","currency":"EUR"},"stock":1}`:          400,
		`{"name":"x","price":{"amount":99.5,"currency":"EUR"},"stock":1}`:           400,
		`{"name":"x","price":{"amount":100,"currency":"EUR"},"stock":1,"active":1}`: 400,
	} {
		resp := e.do(http.MethodPost, "/api/admin/products", r.admin, body)
		if resp.status != want {
			t.Errorf("%s: %s, want %d", body, resp, want)
			continue
		}
		resp.problem(t)
	}
	if resp := e.do(http.MethodPut, "/api/admin/products/"+towelID, r.admin, `{"name":"Towel"}`); resp.status != 422 || len(resp.problem(t).Errors) != 2 {
		t.Fatalf("PUT without price and stock: %s", resp)
	}
	if e.snapshot() != before {
		t.Fatal("refused product writes changed the database")
	}
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "nope"} {
		if resp := e.do(http.MethodPut, "/api/admin/products/"+id, r.admin, `{"name":"x","price":{"amount":1,"currency":"EUR"},"stock":1}`); resp.status != 404 {
			t.Errorf("PUT %s: %s", id, resp)
		}
		if resp := e.do(http.MethodGet, "/api/public/products/"+id, "", nil); resp.status != 404 {
			t.Errorf("GET %s: %s", id, resp)
		}
	}
}
