package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"example.com/shop/platform/authn"
	"example.com/shop/webapp/internal/gateway"
)

// TestAuditLogReadsAsSentences: the admin reads the log as sentences with money, names and
// order numbers linked, never as codes, JSON or key=value ids.
func TestAuditLogReadsAsSentences(t *testing.T) {
	e := newEnv(t)
	order := paidOrder(t, e)
	ada := e.browser()
	ada.adminLogin()
	page := ada.get("/admin/orders/" + order)
	mustStatus(t, ada.post("/admin/orders/"+order+"/refund", url.Values{"amount": {"5"}, "idempotencyKey": {formValue(t, page.body, "idempotencyKey")}}), http.StatusSeeOther)

	r := ada.get("/admin/audit")
	mustStatus(t, r, http.StatusOK)
	mustContain(t, r, `refunded €5.00 of the payment for <a href="/admin/orders/`+order+`">order 10001</a>.`)
	visible := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(r.body[strings.Index(r.body, `id="audit"`):], " ")
	for _, raw := range []string{"payment.refund", `{"amount"`, "detail=", "null", "orderId", order, "500"} {
		if strings.Contains(visible, raw) {
			t.Errorf("the audit log shows %q:\n%s", raw, visible)
		}
	}
}

// TestAuditLogFiltersAndPages: filters reach the services that record the action, and
// paging through the merged logs shows every entry exactly once, newest first.
func TestAuditLogFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	ada := e.browser()
	ada.adminLogin()
	grace := &authn.Principal{Subject: "grace-sub", Username: "grace"}
	admin := &authn.Principal{Subject: "ada-sub", Username: "ada"}
	e.api.mu.Lock()
	for i := range 30 { // interleaved: 30 in the order service's log, 6 in the payment service's
		who := admin
		if i%2 == 1 {
			who = grace
		}
		e.api.log("order", who, "product.create", "product/"+uuid.NewString(), map[string]any{"name": "Item " + strconv.Itoa(i), "price": gateway.Money{Amount: 100, Currency: "EUR"}, "stock": 1})
		if i%5 == 0 {
			e.api.log("payment", who, "payment.refund", "payment/"+uuid.NewString(), map[string]any{"orderId": uuid.NewString(), "amount": 100 + i, "currency": "EUR"})
		}
	}
	e.api.mu.Unlock()

	shown := map[string]int{}
	seen := func(r *response) {
		for _, m := range regexp.MustCompile(`>(Item \d+)<|refunded (€[\d.]+)`).FindAllStringSubmatch(r.body, -1) {
			shown[m[1]+m[2]]++
		}
	}
	r := ada.get("/admin/audit")
	seen(r)
	if strings.Contains(r.body, `id="newest-page"`) {
		t.Fatal("the first page links to the newest entries")
	}
	older := regexp.MustCompile(`id="next-page" href="([^"]+)"`).FindStringSubmatch(r.body)
	if older == nil {
		t.Fatalf("36 entries and no link to older ones:\n%s", r.body)
	}
	r = ada.get(strings.ReplaceAll(older[1], "&amp;", "&"))
	seen(r)
	mustContain(t, r, `id="newest-page"`)
	if strings.Contains(r.body, `id="next-page"`) {
		t.Fatal("the last page links to older entries")
	}
	if len(shown) != 36 {
		t.Fatalf("two pages showed %d different entries, want all 36: %v", len(shown), shown)
	}
	for k, n := range shown {
		if n != 1 {
			t.Errorf("%s shown %d times", k, n)
		}
	}
	if first := strings.Index(r.body, "Item 3<"); first >= 0 && first > strings.Index(r.body, "Item 0<") {
		t.Fatal("entries are not newest first")
	}

	before := len(e.api.callsTo("GET /api/orders/admin/audit"))
	r = ada.get("/admin/audit?action=payment.refund&actor=grace")
	mustStatus(t, r, http.StatusOK)
	if len(e.api.callsTo("GET /api/orders/admin/audit")) != before {
		t.Fatal("a payment action was looked up in the order service's log")
	}
	calls := e.api.callsTo("GET /api/payments/admin/audit")
	if q := calls[len(calls)-1].Query; q != "action=payment.refund&actor=grace&limit=26&offset=0" {
		t.Fatalf("asked the payment service %q", q)
	}
	if n := strings.Count(r.body, "<li data-source="); n != 3 || !strings.Contains(r.body, `<option value="payment.refund" selected>`) {
		t.Fatalf("grace's refunds: %d entries", n)
	}
	mustContain(t, ada.get("/admin/audit?actor=nobody"), `id="no-entries"`, "Nothing recorded that matches.")
	// Values the page does not offer are no filter, never an error page.
	for _, q := range []string{"action=drop-tables&service=nowhere&from-order=-5", "from-order=99999999999&from-payment=x"} {
		r := ada.get("/admin/audit?" + q)
		mustStatus(t, r, http.StatusOK)
		if n := strings.Count(r.body, "<li data-source="); n != 25 {
			t.Errorf("?%s: %d entries, want the first page of everything", q, n)
		}
	}
}

// TestAdminFindsAnOrderByNumber: the admin types the number a shopper quotes, in any of the
// usual ways; something that is no number is said so, and nothing is asked of the API.
func TestAdminFindsAnOrderByNumber(t *testing.T) {
	e := newEnv(t)
	order := paidOrder(t, e)
	ada := e.browser()
	ada.adminLogin()
	for _, typed := range []string{"10001", "#10001", "Order 10001"} {
		r := ada.get("/admin?number=" + url.QueryEscape(typed))
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r, `data-order-id="`+order+`"`, `>10001</a>`)
		calls := e.api.callsTo("GET /api/orders/admin/all")
		if q := calls[len(calls)-1].Query; q != "limit=50&number=10001&offset=0" {
			t.Fatalf("%q sent as %q", typed, q)
		}
	}
	mustContain(t, ada.get("/admin?number=10002"), `id="no-orders"`)
	before := len(e.api.callsTo("GET /api/orders/admin/all"))
	r := ada.get("/admin?number=01a24197")
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, r, "Enter an order number such as 10042.", `aria-invalid="true"`)
	if len(e.api.callsTo("GET /api/orders/admin/all")) != before {
		t.Fatal("a search that is no number was sent to the API")
	}
}
