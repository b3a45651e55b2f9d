package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/platform/testkit"
)

func newTestEnv(t *testing.T, opts ...func(*envConfig)) *env {
	iss := testkit.NewIssuer(t)
	return newEnv(t, iss, tokens(t, iss), opts...)
}

// TestChargeTakesNothingButOrderAndCardFromTheBody: amount, currency, owner, status and id
// in the body are ignored; the amount charged is the order's total.
func TestChargeTakesNothingButOrderAndCardFromTheBody(t *testing.T) {
	e := newTestEnv(t)
	order := e.orders.add(aliceSub, "pending", 2599)
	forged := uuid.NewString()
	body := chargeJSON(order, processor.CardApproved)
	for k, v := range map[string]any{
		"id": forged, "amount": 1, "total": map[string]any{"amount": 1, "currency": "EUR"}, "currency": "USD",
		"userId": bobSub, "status": "refunded", "refunded": map[string]any{"amount": 2599, "currency": "EUR"}, "outcome": "approved",
	} {
		body[k] = v
	}
	r := e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k-1", body: body})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	b := r.json(t)
	if b["id"] == forged || b["userId"] != aliceSub || b["status"] != "approved" {
		t.Fatalf("the body's fields were used: %v", b)
	}
	p := e.payment(b["id"].(string))
	if p.Amount != (payment.Money{Amount: 2599, Currency: "EUR"}) || p.Refunded != 0 || p.UserID != aliceSub {
		t.Fatalf("stored payment %+v: the charge must be the order's total", p)
	}
	if loc := r.header.Get("Location"); loc != "/api/payments/"+p.ID {
		t.Fatalf("Location %q", loc)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
}

// TestChargeEveryTestCard runs each documented test card through the API.
func TestChargeEveryTestCard(t *testing.T) {
	cases := []struct {
		number string
		status int
		state  payment.Status
		reason payment.Reason
		brand  payment.Brand
	}{
		{"4242 4242 4242 4242", 201, payment.StatusApproved, "", payment.BrandVisa},
		{processor.CardApprovedMC, 201, payment.StatusApproved, "", payment.BrandMastercard},
		{processor.CardApprovedAmex, 201, payment.StatusApproved, "", payment.BrandAmex},
		{processor.CardDeclined, 402, payment.StatusDeclined, payment.ReasonCardDeclined, payment.BrandVisa},
		{processor.CardInsufficientFunds, 402, payment.StatusDeclined, payment.ReasonInsufficientFunds, payment.BrandVisa},
		{processor.CardProcessorError, 502, payment.StatusFailed, payment.ReasonProcessorError, payment.BrandVisa},
		{"4111111111111111", 402, payment.StatusDeclined, payment.ReasonCardDeclined, payment.BrandVisa},
	}
	e := newTestEnv(t)
	for _, tc := range cases {
		t.Run(tc.number, func(t *testing.T) {
			e := e.with(t)
			order := e.orders.add(aliceSub, "pending", 1999)
			r := e.charge(owner, order, tc.number, uuid.NewString())
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var id string
			if tc.status == 201 {
				id = r.json(t)["id"].(string)
			} else {
				r.problem(t)
				b := r.json(t)
				id, _ = b["paymentId"].(string)
				if b["reason"] != string(tc.reason) || id == "" {
					t.Fatalf("problem without paymentId and reason: %s", r.body)
				}
			}
			p := e.payment(id)
			last4 := strings.ReplaceAll(tc.number, " ", "")
			last4 = last4[len(last4)-4:]
			if p.Status != tc.state || p.Reason != tc.reason || p.CardBrand != tc.brand || p.CardLast4 != last4 || p.OrderID != order {
				t.Fatalf("stored %+v", p)
			}
			if tc.status != 201 {
				// A declined or failed attempt frees the order for another card.
				if again := e.charge(owner, order, processor.CardApproved, uuid.NewString()); again.status != 201 {
					t.Fatalf("charging again after %d: %d %s", tc.status, again.status, again.body)
				}
			}
		})
	}
}

// TestChargeRefusesBadRequests: unreadable requests are 400, invalid values 422, both as
// problem+json, and none of them stores anything or reaches the processor.
func TestChargeRefusesBadRequests(t *testing.T) {
	e := newTestEnv(t)
	pending := e.orders.add(aliceSub, "pending", 1999)
	bobs := e.orders.add(bobSub, "pending", 1999)
	cancelled := e.orders.add(aliceSub, "cancelled", 1999)
	paid := e.orders.add(aliceSub, "paid", 1999)
	card := func(change func(c map[string]any)) map[string]any {
		b := chargeJSON(pending, processor.CardApproved)
		change(b["card"].(map[string]any))
		return b
	}
	cases := []struct {
		name   string
		key    string
		body   any
		header map[string]string
		status int
		fields []string
	}{
		{name: "no Idempotency-Key", body: chargeJSON(pending, processor.CardApproved), status: 400},
		{name: "Idempotency-Key with spaces", key: "not a key", body: chargeJSON(pending, processor.CardApproved), status: 400},
		{name: "Idempotency-Key too long", key: strings.Repeat("k", 129), body: chargeJSON(pending, processor.CardApproved), status: 400},
		{name: "empty body", key: "k", body: "", status: 400},
		{name: "malformed JSON", key: "k", body: `{"orderId": "` + pending + `", "card": {`, status: 400},
		{name: "not an object", key: "k", body: `["` + pending + `"]`, status: 400},
		{name: "two objects", key: "k", body: `{"orderId":"` + pending + `"} {}`, status: 400},
		{name: "orderId a number", key: "k", body: `{"orderId": 42, "card": {}}`, status: 400, fields: []string{"orderId"}},
		{name: "card number a number", key: "k", body: `{"orderId": "` + pending + `", "card": {"number": 4242424242424242}}`, status: 400, fields: []string{"card.number"}},
		{name: "expMonth a string", key: "k", body: `{"orderId": "` + pending + `", "card": {"expMonth": "12"}}`, status: 400, fields: []string{"card.expMonth"}},
		{name: "not JSON", key: "k", body: "orderId=" + pending, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415},
		{name: "orderId not an id", key: "k", body: chargeJSON("../admin", processor.CardApproved), status: 422, fields: []string{"orderId"}},
		{name: "no card", key: "k", body: map[string]any{"orderId": pending}, status: 422, fields: []string{"card.number", "card.expMonth", "card.cvc"}},
		{name: "Luhn check fails", key: "k", body: card(func(c map[string]any) { c["number"] = "4242424242424241" }), status: 422, fields: []string{"card.number"}},
		{name: "brand not accepted", key: "k", body: card(func(c map[string]any) { c["number"] = "6011111111111117" }), status: 422, fields: []string{"card.number"}},
		{name: "expired", key: "k", body: card(func(c map[string]any) { c["expYear"] = time.Now().Year() - 1 }), status: 422, fields: []string{"card.expYear"}},
		{name: "bad CVC", key: "k", body: card(func(c map[string]any) { c["cvc"] = "12" }), status: 422, fields: []string{"card.cvc"}},
		{name: "unknown order", key: "k", body: chargeJSON(uuid.NewString(), processor.CardApproved), status: 422},
		{name: "another shopper's order", key: "k", body: chargeJSON(bobs, processor.CardApproved), status: 422},
		{name: "cancelled order", key: "k", body: chargeJSON(cancelled, processor.CardApproved), status: 409},
		{name: "paid order", key: "k", body: chargeJSON(paid, processor.CardApproved), status: 409},
	}
	before := e.dump()
	details := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.with(t).call(req{method: "POST", path: "/api/payments", as: owner, key: tc.key, body: tc.body, header: tc.header})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			p := r.problem(t)
			details[tc.name] = p.Detail
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tc.fields) {
				t.Fatalf("fields %v, want %v: %s", fields, tc.fields, r.body)
			}
		})
	}
	if after := e.dump(); after != before {
		t.Fatalf("refused charges changed the store:\n%s", after)
	}
	if n := e.proc.calls.Load(); n != 0 {
		t.Fatalf("refused charges reached the processor %d times", n)
	}
	if details["unknown order"] != details["another shopper's order"] {
		t.Fatalf("another shopper's order is told apart from an unknown one: %q vs %q",
			details["unknown order"], details["another shopper's order"])
	}
}

// TestChargeIdempotency: the same key and request replays the first answer, even after
// the payment moved on; the same key with another request is 422.
func TestChargeIdempotency(t *testing.T) {
	e := newTestEnv(t)
	order := e.orders.add(aliceSub, "pending", 2599)
	first := e.charge(owner, order, processor.CardApproved, "checkout-1")
	if first.status != 201 || first.header.Get(httpapi.HeaderReplayed) != "" {
		t.Fatalf("first: %d %v %s", first.status, first.header, first.body)
	}
	id := first.json(t)["id"].(string)
	// A refund moves the payment on; the charge's retry still answers what it first did.
	if r := e.call(req{method: "POST", path: "/api/payments/" + id + "/refunds", as: admin, key: "r-1", body: map[string]any{"amount": 100}}); r.status != 201 {
		t.Fatalf("refund: %d %s", r.status, r.body)
	}
	again := e.charge(owner, order, processor.CardApproved, "checkout-1")
	if again.status != 201 || string(again.body) != string(first.body) || again.header.Get(httpapi.HeaderReplayed) != "true" {
		t.Fatalf("replay: %d %s\nfirst: %s", again.status, again.body, first.body)
	}
	if n := e.proc.calls.Load(); n != 1 {
		t.Fatalf("the processor was called %d times for one charge", n)
	}

	other := e.orders.add(aliceSub, "pending", 100)
	for name, body := range map[string]any{
		"another order": chargeJSON(other, processor.CardApproved),
		"another card":  chargeJSON(order, processor.CardDeclined),
	} {
		r := e.call(req{method: "POST", path: "/api/payments", as: owner, key: "checkout-1", body: body})
		if r.status != 422 || !strings.Contains(r.problem(t).Detail, "Idempotency-Key") {
			t.Errorf("same key, %s: %d %s", name, r.status, r.body)
		}
	}
	// Keys belong to their caller: bob's "checkout-1" is his own.
	bobs := e.orders.add(bobSub, "pending", 500)
	if r := e.charge(otherShopper, bobs, processor.CardApproved, "checkout-1"); r.status != 201 {
		t.Fatalf("bob's own checkout-1: %d %s", r.status, r.body)
	}

	// A declined charge replays its 402, with the same payment.
	declined := e.orders.add(aliceSub, "pending", 700)
	d1 := e.charge(owner, declined, processor.CardInsufficientFunds, "checkout-2")
	d2 := e.charge(owner, declined, processor.CardInsufficientFunds, "checkout-2")
	if d1.status != 402 || d2.status != 402 || d1.json(t)["paymentId"] != d2.json(t)["paymentId"] || d2.header.Get(httpapi.HeaderReplayed) != "true" {
		t.Fatalf("declined replay: %s / %s", d1.body, d2.body)
	}
	if n := e.proc.calls.Load(); n != 3 {
		t.Fatalf("processor calls %d, want 3 (alice, bob, the declined one)", n)
	}
}

// TestConcurrentChargesOfOneOrderChargeTheCardOnce: whatever the keys, racing charges of
// one order reach the processor once: one 201, every other one 409 saying the order is
// being paid or already paid. The winner's key then replays its 201.
func TestConcurrentChargesOfOneOrderChargeTheCardOnce(t *testing.T) {
	for _, sameKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("same key %v", sameKey), func(t *testing.T) {
			e := newTestEnv(t)
			e.proc.delay = 50 * time.Millisecond // keep the first charge in flight while the others arrive
			order := e.orders.add(aliceSub, "pending", 2599)
			const n = 8
			answers := make([]response, n)
			keys := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				keys[i] = uuid.NewString()
				if sameKey {
					keys[i] = "same-key"
				}
				wg.Go(func() { answers[i] = e.charge(owner, order, processor.CardApproved, keys[i]) })
			}
			wg.Wait()
			created := map[string]bool{}
			var won int
			for i, r := range answers {
				switch r.status {
				case 201:
					created[r.json(t)["id"].(string)] = true
					won = i
				case 409:
					if d := r.problem(t).Detail; d != payment.ErrPaymentInProgress.Error() && d != payment.ErrOrderPaid.Error() {
						t.Errorf("a losing charge is told %q", d)
					}
				default:
					t.Errorf("status %d %s", r.status, r.body)
				}
			}
			if len(created) != 1 {
				t.Fatalf("%d distinct payments created, want 1", len(created))
			}
			again := e.charge(owner, order, processor.CardApproved, keys[won])
			if again.status != 201 || string(again.body) != string(answers[won].body) || again.header.Get(httpapi.HeaderReplayed) != "true" {
				t.Fatalf("the winner's key retried: %d %s, first %s", again.status, again.body, answers[won].body)
			}
			if calls := e.proc.calls.Load(); calls != 1 {
				t.Fatalf("the card was charged %d times", calls)
			}
			all, _ := e.store.Payments(t.Context(), payment.Filter{OrderID: order})
			if len(all) != 1 || all[0].Status != payment.StatusApproved {
				t.Fatalf("stored: %+v", all)
			}
		})
	}
}

// TestChargeWhenTheOrderServiceMisbehaves: the caller gets 502 or 504, nothing is stored,
// nothing reaches the processor, and the answer does not give away the upstream's address.
func TestChargeWhenTheOrderServiceMisbehaves(t *testing.T) {
	cases := []struct {
		name   string
		set    func(f *fakeOrders)
		status int
	}{
		{"answers 500", func(f *fakeOrders) { f.fail = 500 }, 502},
		{"answers 503", func(f *fakeOrders) { f.fail = 503 }, 502},
		{"refuses the token", func(f *fakeOrders) { f.fail = 401 }, 502},
		{"sends garbage", func(f *fakeOrders) { f.body = "<html>oops" }, 502},
		{"sends an order without a total", func(f *fakeOrders) {
			f.body = `{"id":"ORDER","userId":"alice-sub","status":"pending","total":{"amount":0,"currency":"EUR"}}`
		}, 502},
		{"sends another order", func(f *fakeOrders) {
			f.body = fmt.Sprintf(`{"id":%q,"userId":"alice-sub","status":"pending","total":{"amount":5,"currency":"EUR"}}`, uuid.NewString())
		}, 502},
		{"is slow", func(f *fakeOrders) { f.delay = 500 * time.Millisecond }, 504},
		{"is down", func(f *fakeOrders) { f.srv.Close() }, 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *envConfig) { c.orderTimeout = 200 * time.Millisecond })
			order := e.orders.add(aliceSub, "pending", 2599)
			e.orders.set(func(f *fakeOrders) {
				tc.set(f)
				f.body = strings.ReplaceAll(f.body, "ORDER", order)
			})
			before := e.dump()
			r := e.charge(owner, order, processor.CardApproved, uuid.NewString())
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			r.problem(t)
			host := strings.TrimPrefix(e.orders.srv.URL, "http://")
			if strings.Contains(string(r.body), host) || strings.Contains(string(r.body), "127.0.0.1") {
				t.Fatalf("the answer names the upstream: %s", r.body)
			}
			if e.dump() != before || e.proc.calls.Load() != 0 {
				t.Fatal("a charge that could not read its order stored or charged something")
			}
		})
	}
}

// TestChargePropagatesTheCallersToken: the order is read with the caller's own token and
// request id (JWT propagation), never with a token of the payment service's.
func TestChargePropagatesTheCallersToken(t *testing.T) {
	e := newTestEnv(t)
	order := e.orders.add(aliceSub, "pending", 2599)
	r := e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k", body: chargeJSON(order, processor.CardApproved),
		header: map[string]string{"X-Request-Id": "checkout-req-7"}})
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	reads := e.orders.reads()
	if len(reads) != 1 {
		t.Fatalf("%d order reads", len(reads))
	}
	if got := reads[0].Get("Authorization"); got != "Bearer "+e.tokens[owner] {
		t.Fatalf("the order was read with %q, not the caller's token", got)
	}
	if got := reads[0].Get("X-Request-Id"); got != "checkout-req-7" {
		t.Fatalf("request id %q not passed along", got)
	}
}

// TestCardDataNeverReachesLogsOrTheDatabase charges on every path a card can take
// (approved, declined, processor error, invalid, unreadable, replayed) and then searches
// the logs, the tables and the raw database files for the numbers and the CVC.
func TestCardDataNeverReachesLogsOrTheDatabase(t *testing.T) {
	e := newTestEnv(t)
	const cvc = "913"
	numbers := []string{processor.CardApproved, processor.CardDeclined, processor.CardProcessorError, processor.CardInsufficientFunds, "4242424242424241"}
	for _, number := range numbers {
		order := e.orders.add(aliceSub, "pending", 2599)
		body := chargeJSON(order, number)
		body["card"].(map[string]any)["cvc"] = cvc
		key := uuid.NewString()
		for range 2 { // the second is a replay
			e.call(req{method: "POST", path: "/api/payments", as: owner, key: key, body: body})
		}
	}
	e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k",
		body: `{"orderId": "x", "card": {"number": "` + processor.CardApproved + `", "cvc": "` + cvc + `", "expMonth": "x"}}`})
	e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k", body: `{"card": {"number": "` + processor.CardApproved + `", "cvc": "` + cvc})

	logs, rows, raw := e.logs.String(), e.dump(), string(e.rawDatabase())
	if !strings.Contains(logs, "card processor failed") || !strings.Contains(rows, "|4242|") {
		t.Fatalf("the test did not exercise the paths it means to:\nlogs:\n%s\nrows:\n%s", logs, rows)
	}
	cvcPattern := regexp.MustCompile(`(^|[^0-9A-Za-z-])` + cvc + `($|[^0-9A-Za-z-])`)
	for where, text := range map[string]string{"logs": logs, "tables": rows, "database files": raw} {
		for _, number := range numbers {
			if strings.Contains(text, number) {
				t.Errorf("card number %s found in the %s", number, where)
			}
		}
		if cvcPattern.MatchString(text) {
			t.Errorf("the CVC found in the %s", where)
		}
	}
}

// TestApprovalsAreReportedToTheOrderService: an approved charge leaves a paid notice in the
// outbox, so the order service learns of it even when the charge's answer never reaches
// it; declines, processor failures and replays leave none.
func TestApprovalsAreReportedToTheOrderService(t *testing.T) {
	e := newTestEnv(t)
	declined := e.orders.add(aliceSub, "pending", 1999)
	for _, number := range []string{processor.CardDeclined, processor.CardProcessorError} {
		if r := e.charge(owner, declined, number, uuid.NewString()); r.status < 400 {
			t.Fatalf("%s: %d", number, r.status)
		}
	}
	order := e.orders.add(aliceSub, "pending", 2599)
	r := e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k-1", body: chargeJSON(order, processor.CardApproved),
		header: map[string]string{"X-Request-Id": "checkout-7"}})
	if r.status != http.StatusCreated {
		t.Fatalf("charge: %d %s", r.status, r.body)
	}
	replay := e.call(req{method: "POST", path: "/api/payments", as: owner, key: "k-1", body: chargeJSON(order, processor.CardApproved)})
	if replay.status != http.StatusOK && replay.status != http.StatusCreated {
		t.Fatalf("replay: %d %s", replay.status, replay.body)
	}
	if n := e.relay.Flush(t.Context()); n != 1 {
		t.Fatalf("delivered %d notices, want the approval's only", n)
	}
	got := e.orders.received()
	id := r.json(t)["id"].(string)
	want := fmt.Sprint(map[string]any{"paymentId": id, "amount": map[string]any{"amount": 2599.0, "currency": "EUR"}})
	if len(got) != 1 || got[0].kind != "paid" || got[0].orderID != order || fmt.Sprint(got[0].body) != want ||
		got[0].header.Get("Idempotency-Key") != "paid-"+id || got[0].header.Get("X-Request-Id") != "checkout-7" {
		t.Fatalf("notice %+v\nwant body %s", got, want)
	}
}
