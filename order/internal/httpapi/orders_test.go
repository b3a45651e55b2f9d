package httpapi_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"
)

// TestCreateOrderTakesNothingServerOwnedFromTheBody: the owner, customer, status, prices,
// totals, ids and payment of an order come from the token and the catalog. A body that
// tries to set them creates a normal order at catalog prices for the caller.
func TestCreateOrderTakesNothingServerOwnedFromTheBody(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	towel := e.storedProduct(towelID)
	forgedID := uuid.NewString()
	resp := e.do(http.MethodPost, "/api/orders", r.alice, `{
		"id": "`+forgedID+`", "userId": "`+r.bobSub+`", "customer": "bob", "status": "paid",
		"total": {"amount": 1, "currency": "EUR"}, "refunded": {"amount": 0, "currency": "EUR"},
		"paymentId": "pay-forged", "paymentAttempts": 99, "createdAt": "2001-01-01T00:00:00Z",
		"items": [{"productId": "`+towelID+`", "quantity": 2, "name": "Free towel",
			"unitPrice": {"amount": 1, "currency": "EUR"}, "lineTotal": {"amount": 2, "currency": "USD"}}]
	}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("create: %s", resp)
	}
	var o orderOf
	resp.decode(t, &o)
	want := 2 * towel.Price.Amount
	if o.ID == forgedID || o.UserID != r.aliceSub || o.Customer != "alice" || o.Status != "pending" || o.PaymentID != "" ||
		o.Total != (money{want, "EUR"}) || o.Items[0].Name != towel.Name || o.Items[0].UnitPrice.Amount != towel.Price.Amount ||
		o.Items[0].LineTotal != (money{want, "EUR"}) || o.CreatedAt.Year() < 2026 {
		t.Fatalf("the body's values were taken: %s", resp.body)
	}
	stored := e.storedOrder(o.ID)
	if stored.UserID != r.aliceSub || stored.Status != order.StatusPending || stored.Total.Amount != want || stored.PaymentAttempts != 0 {
		t.Fatalf("stored %+v", stored)
	}
	if loc := resp.header.Get("Location"); loc != "/api/orders/"+o.ID {
		t.Fatalf("Location %q", loc)
	}
	if got := e.do(http.MethodGet, "/api/orders/"+forgedID, r.alice, nil); got.status != http.StatusNotFound {
		t.Fatalf("an order exists under the forged id: %s", got)
	}
}

// TestProductWritesTakeNothingServerOwnedFromTheBody: an admin cannot choose a product's id
// or timestamps either.
func TestProductWritesTakeNothingServerOwnedFromTheBody(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	forgedID := uuid.NewString()
	resp := e.do(http.MethodPost, "/api/admin/products", r.admin, `{"id":"`+forgedID+`","name":"Teapot","price":{"amount":4200,"currency":"EUR"},"stock":5,"createdAt":"2001-01-01T00:00:00Z"}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("create: %s", resp)
	}
	var p struct {
		ID        string `json:"id"`
		CreatedAt string `json:"createdAt"`
		Active    bool   `json:"active"`
	}
	resp.decode(t, &p)
	if p.ID == forgedID || strings.HasPrefix(p.CreatedAt, "2001") || !p.Active {
		t.Fatalf("forged fields taken: %s", resp.body)
	}
	if got := e.do(http.MethodGet, "/api/public/products/"+p.ID, "", nil); got.status != http.StatusOK {
		t.Fatalf("new product not in the catalog: %s", got)
	}
}

// TestUnreadableAndInvalidOrderRequests: every bad body is a problem+json 400 (cannot be
// read) or 422 (invalid values, with the fields named), and creates nothing.
func TestUnreadableAndInvalidOrderRequests(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	line := func(id string, q string) string { return `{"items":[{"productId":"` + id + `","quantity":` + q + `}]}` }
	tooMany := make([]string, order.DefaultRules.MaxLines+1)
	for i := range tooMany {
		tooMany[i] = `{"productId":"` + uuid.NewString() + `","quantity":1}`
	}
	cases := []struct {
		name   string
		body   string
		status int
		field  string // for 422: a field the problem must name
	}{
		{"empty body", "", 400, ""},
		{"not JSON", "items=1", 400, ""},
		{"truncated JSON", `{"items":[{"productId":"` + towelID, 400, ""},
		{"two JSON values", line(towelID, "1") + line(towelID, "1"), 400, ""},
		{"array body", `[{"productId":"` + towelID + `","quantity":1}]`, 400, ""},
		{"items not an array", `{"items":{"productId":"` + towelID + `"}}`, 400, ""},
		{"quantity as string", line(towelID, `"2"`), 400, ""},
		{"quantity fractional", line(towelID, "1.5"), 400, ""},
		{"quantity beyond int64", line(towelID, "100000000000000000000000"), 400, ""},
		{"productId as number", `{"items":[{"productId":42,"quantity":1}]}`, 400, ""},
		{"null body", "null", 422, "items"},
		{"no items", `{"items":[]}`, 422, "items"},
		{"zero quantity", line(towelID, "0"), 422, "items[0].quantity"},
		{"negative quantity", line(towelID, "-3"), 422, "items[0].quantity"},
		{"quantity above the shop's 10", line(towelID, "11"), 422, "items[0].quantity"},
		{"huge quantity", line(towelID, "2147483648"), 422, "items[0].quantity"},
		{"missing quantity", `{"items":[{"productId":"` + towelID + `"}]}`, 422, "items[0].quantity"},
		{"missing productId", `{"items":[{"quantity":1}]}`, 422, "items[0].productId"},
		{"productId not a uuid", line("towel", "1"), 422, "items[0].productId"},
		{"productId in upper case", line(strings.ToUpper(towelID), "1"), 422, "items[0].productId"},
		{"unknown product", line(uuid.NewString(), "1"), 422, "items[0].productId"},
		{"duplicate product", `{"items":[{"productId":"` + towelID + `","quantity":1},{"productId":"` + towelID + `","quantity":2}]}`, 422, "items[1].productId"},
		{"21 lines", `{"items":[` + strings.Join(tooMany, ",") + `]}`, 422, "items"},
		{"more than in stock", line(printID, "4"), 409, ""},
	}
	before := e.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(http.MethodPost, "/api/orders", r.alice, tc.body)
			if resp.status != tc.status {
				t.Fatalf("status %s, want %d", resp, tc.status)
			}
			p := resp.problem(t)
			if tc.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == tc.field
				}
				if !found {
					t.Fatalf("problem does not name %s: %s", tc.field, resp.body)
				}
			}
			if strings.Contains(p.Detail, "100000000000000000000000") {
				t.Fatalf("the detail echoes the request: %s", p.Detail)
			}
		})
	}
	if e.snapshot() != before {
		t.Fatal("refused requests changed the database")
	}
	// A retired product cannot be ordered either.
	if resp := e.do(http.MethodDelete, "/api/admin/products/"+mugID, r.admin, nil); resp.status != 204 {
		t.Fatal(resp)
	}
	if resp := e.do(http.MethodPost, "/api/orders", r.alice, line(mugID, "1")); resp.status != 422 {
		t.Fatalf("retired product: %s", resp)
	}
}

func TestIdempotentCreate(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	stock := e.stock(towelID)
	body := `{"items":[{"productId":"` + towelID + `","quantity":2}]}`
	first := e.do(http.MethodPost, "/api/orders", r.alice, body, "Idempotency-Key", "checkout-7f3a")
	again := e.do(http.MethodPost, "/api/orders", r.alice, body, "Idempotency-Key", "checkout-7f3a")
	if first.status != 201 || again.status != 201 || string(first.body) != string(again.body) {
		t.Fatalf("first %s\nretry %s", first, again)
	}
	if first.header.Get("Idempotent-Replayed") != "" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay header: first %q, retry %q", first.header.Get("Idempotent-Replayed"), again.header.Get("Idempotent-Replayed"))
	}
	if e.stock(towelID) != stock-2 {
		t.Fatal("the retry reserved stock again")
	}
	other := e.do(http.MethodPost, "/api/orders", r.alice, `{"items":[{"productId":"`+towelID+`","quantity":3}]}`, "Idempotency-Key", "checkout-7f3a")
	if other.status != 422 {
		t.Fatalf("same key, other body: %s", other)
	}
	other.problem(t)
	// Another shopper's identical key is theirs alone.
	bobs := e.do(http.MethodPost, "/api/orders", r.bob, body, "Idempotency-Key", "checkout-7f3a")
	if bobs.status != 201 || bobs.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("bob: %s", bobs)
	}
	var list []orderOf
	mine := e.do(http.MethodGet, "/api/orders", r.alice, nil)
	mine.decode(t, &list)
	if len(list) != 1 {
		t.Fatalf("alice has %d orders, want 1", len(list))
	}
	for _, key := range []string{"has space", strings.Repeat("k", 129), "ünïcode", "semi;colon"} {
		if resp := e.do(http.MethodPost, "/api/orders", r.alice, body, "Idempotency-Key", key); resp.status != 422 {
			t.Errorf("key %q: %s", key, resp)
		}
	}
}

// TestRaceForTheLastItemOverHTTP: eight shoppers press "buy" on the last print at once. One
// order is created; everyone else gets 409, and the stock is zero, not negative.
func TestRaceForTheLastItemOverHTTP(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	created := e.do(http.MethodPost, "/api/admin/products", r.admin, `{"name":"Last print","price":{"amount":4500,"currency":"EUR"},"stock":1}`)
	var p struct{ ID string }
	created.decode(t, &p)
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = r.shopper(t, fmt.Sprintf("shopper%d", i))
	}
	statuses := make([]int, len(tokens))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, tok := range tokens {
		wg.Go(func() {
			<-start
			statuses[i] = e.do(http.MethodPost, "/api/orders", tok, `{"items":[{"productId":"`+p.ID+`","quantity":1}]}`).status
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[201] != 1 || count[409] != len(tokens)-1 {
		t.Fatalf("statuses %v, want one 201 and the rest 409", statuses)
	}
	if e.stock(p.ID) != 0 {
		t.Fatalf("stock %d", e.stock(p.ID))
	}
}

// TestSomeoneElsesOrderLooksLikeNoOrder: a shopper cannot tell another shopper's order from
// an order that does not exist: same status, same body (but for the request id).
func TestSomeoneElsesOrderLooksLikeNoOrder(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	alices := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	requestID := regexp.MustCompile(`"requestId":"[^"]*"`)
	normal := func(resp response) string {
		return fmt.Sprint(resp.status, requestID.ReplaceAllString(string(resp.body), ""))
	}
	for _, probe := range []struct{ method, suffix, body string }{
		{http.MethodGet, "", ""}, {http.MethodPost, "/cancel", ""}, {http.MethodDelete, "", ""}, {http.MethodPost, "/pay", cardBody(cardApproved)},
	} {
		var body any
		if probe.body != "" {
			body = probe.body
		}
		theirs := e.do(probe.method, "/api/orders/"+alices.ID+probe.suffix, r.bob, body)
		missing := e.do(probe.method, "/api/orders/"+uuid.NewString()+probe.suffix, r.bob, body)
		garbage := e.do(probe.method, "/api/orders/not-an-id"+probe.suffix, r.bob, body)
		if theirs.status != 404 || normal(theirs) != normal(missing) || normal(missing) != normal(garbage) {
			t.Errorf("%s %s: someone else's %s\nmissing %s\ngarbage %s", probe.method, probe.suffix, theirs, missing, garbage)
		}
	}
	if e.storedOrder(alices.ID).Status != order.StatusPending {
		t.Fatal("bob's probes changed alice's order")
	}
}

func TestListsShowOnlyTheCallersOrders(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	a := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	b := e.createOrder(r.bob, order.Line{ProductID: mugID, Quantity: 1})
	for _, tc := range []struct {
		token string
		want  string
	}{{r.alice, a.ID}, {r.bob, b.ID}} {
		var list []orderOf
		resp := e.do(http.MethodGet, "/api/orders", tc.token, nil)
		resp.decode(t, &list)
		if len(list) != 1 || list[0].ID != tc.want {
			t.Fatalf("list %s, want only %s", resp.body, tc.want)
		}
	}
	// Query parameters cannot widen the list.
	var list []orderOf
	e.do(http.MethodGet, "/api/orders?userId="+r.bobSub+"&customer=bob", r.alice, nil).decode(t, &list)
	if len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("query parameters widened the list: %+v", list)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "offset=-1", "offset=100001"} {
		if resp := e.do(http.MethodGet, "/api/orders?"+q, r.alice, nil); resp.status != 422 {
			t.Errorf("?%s: %s", q, resp)
		}
	}
}

func TestAdminListsAndFiltersAllOrders(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	a := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	b := e.createOrder(r.bob, order.Line{ProductID: mugID, Quantity: 1})
	if resp := e.do(http.MethodPost, "/api/orders/"+b.ID+"/cancel", r.bob, nil); resp.status != 200 {
		t.Fatal(resp)
	}
	ids := func(query string) string {
		resp := e.do(http.MethodGet, "/api/orders/admin/all"+query, r.admin, nil)
		if resp.status != 200 {
			t.Fatalf("%s: %s", query, resp)
		}
		var list []orderOf
		resp.decode(t, &list)
		var out []string
		for _, o := range list {
			out = append(out, o.ID)
		}
		return strings.Join(out, ",")
	}
	for query, want := range map[string]string{
		"":                               b.ID + "," + a.ID,
		"?status=cancelled":              b.ID,
		"?customer=alice":                a.ID,
		"?customer=alice&status=pending": a.ID,
		"?status=paid":                   "",
		"?limit=1&offset=1":              a.ID,
	} {
		if got := ids(query); got != want {
			t.Errorf("%q: %s, want %s", query, got, want)
		}
	}
	if resp := e.do(http.MethodGet, "/api/orders/admin/all?status=shipped", r.admin, nil); resp.status != 422 {
		t.Fatalf("unknown status: %s", resp)
	}
}

// TestLifecycleOverHTTP: cancel releases stock; illegal moves are 409; an owner may delete
// only a pending or cancelled order, an admin any.
func TestLifecycleOverHTTP(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	stock := e.stock(towelID)
	o := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 3})
	if e.stock(towelID) != stock-3 {
		t.Fatal("stock not reserved")
	}
	resp := e.do(http.MethodPost, "/api/orders/"+o.ID+"/cancel", r.alice, nil)
	var got orderOf
	resp.decode(t, &got)
	if resp.status != 200 || got.Status != "cancelled" || e.stock(towelID) != stock {
		t.Fatalf("cancel: %s, stock %d", resp, e.stock(towelID))
	}
	for _, try := range []struct{ path, body string }{{"/cancel", ""}, {"/pay", cardBody(cardApproved)}} {
		var body any
		if try.body != "" {
			body = try.body
		}
		if resp := e.do(http.MethodPost, "/api/orders/"+o.ID+try.path, r.alice, body); resp.status != 409 {
			t.Fatalf("%s on a cancelled order: %s", try.path, resp)
		}
	}
	if len(e.pay.callLog()) != 0 {
		t.Fatal("a cancelled order was sent to the payment service")
	}
	if resp := e.do(http.MethodDelete, "/api/orders/"+o.ID, r.alice, nil); resp.status != 204 {
		t.Fatalf("owner deletes a cancelled order: %s", resp)
	}
	if resp := e.do(http.MethodGet, "/api/orders/"+o.ID, r.alice, nil); resp.status != 404 {
		t.Fatalf("deleted order still readable: %s", resp)
	}
	var softDeleted bool
	e.query(func(db *sql.DB) error {
		return db.QueryRow("SELECT deleted_at IS NOT NULL FROM orders WHERE id = ?", o.ID).Scan(&softDeleted)
	})
	if !softDeleted {
		t.Fatal("the deleted order is gone from the database, or not marked deleted")
	}

	paid := e.createOrder(r.alice, order.Line{ProductID: towelID, Quantity: 1})
	if resp := e.do(http.MethodPost, "/api/orders/"+paid.ID+"/pay", r.alice, cardBody(cardApproved)); resp.status != 200 {
		t.Fatal(resp)
	}
	if resp := e.do(http.MethodPost, "/api/orders/"+paid.ID+"/cancel", r.alice, nil); resp.status != 409 {
		t.Fatalf("cancel a paid order: %s", resp)
	}
	if resp := e.do(http.MethodDelete, "/api/orders/"+paid.ID, r.alice, nil); resp.status != 409 {
		t.Fatalf("owner deletes a paid order: %s", resp)
	}
	if resp := e.do(http.MethodDelete, "/api/orders/"+paid.ID, r.admin, nil); resp.status != 204 {
		t.Fatalf("admin deletes a paid order: %s", resp)
	}
	if e.stock(towelID) != stock-1 {
		t.Fatal("deleting a paid order put sold goods back on the shelf")
	}
}

// TestOnlyJSONBodiesAreRead: a body a browser could send cross-site without a preflight
// (form, text/plain) is refused before it is read.
func TestOnlyJSONBodiesAreRead(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	body := `{"items":[{"productId":"` + towelID + `","quantity":1}]}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonp", "application/xml", ""} {
		req := httptest.NewRequest(http.MethodPost, "/api/orders", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+r.alice)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := e.api.App.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d", ct, resp.StatusCode)
		}
	}
	if got := e.do(http.MethodPost, "/api/orders", r.alice, body, "Content-Type", "application/json; charset=utf-8"); got.status != 201 {
		t.Fatalf("JSON with a charset: %s", got)
	}
}

// TestPrivateAnswersAreNotCached: orders, audit and errors are no-store; the public catalog
// may be cached.
func TestPrivateAnswersAreNotCached(t *testing.T) {
	r := newRealm(t)
	e := newEnv(t, r)
	for _, tc := range []struct {
		path, token string
		noStore     bool
	}{
		{"/api/orders", r.alice, true},
		{"/api/orders", "", true},
		{"/api/orders/admin/audit", r.admin, true},
		{"/api/public/products", "", false},
	} {
		resp := e.do(http.MethodGet, tc.path, tc.token, nil)
		if got := resp.header.Get("Cache-Control") == "no-store"; got != tc.noStore {
			t.Errorf("%s (token %v): Cache-Control %q", tc.path, tc.token != "", resp.header.Get("Cache-Control"))
		}
	}
}
