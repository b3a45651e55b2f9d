package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// towelID is the seed catalog's Linen Tea Towel (60 in stock at the start).
const towelID = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02"

// answer is a response of the API, read and closed.
type answer struct {
	status int
	body   []byte
}

// apiSend sends a request to the gateway and reads the answer.
func apiSend(t *testing.T, token, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, shop.GatewayURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

// catalogStock reads a product's stock from the public catalogue, as anyone sees it.
func catalogStock(t *testing.T, productID string) int {
	t.Helper()
	resp, err := http.Get(shop.GatewayURL + "/api/public/products/" + productID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Stock int `json:"stock"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("catalogue: %d %v", resp.StatusCode, err)
	}
	return p.Stock
}

// heldOrder is what the API says about an order and its payment hold.
type heldOrder struct {
	ID           string     `json:"id"`
	Status       string     `json:"status"`
	CancelReason string     `json:"cancelReason"`
	PaymentDueAt *time.Time `json:"paymentDueAt"`
	CreatedAt    time.Time  `json:"createdAt"`
}

// TestUnpaidOrdersAreCappedAndExpire: the inventory hoarding of issue 19 tried through the
// gateway. A shopper places unpaid orders up to the cap and is refused the next with a 409
// that says why, and an order beyond the shop's limits with a 422. Pays for one; the
// others expire after the stack's short payment hold, their stock is back in the public
// catalogue, paying one is refused without a charge, and the web shop says it expired.
func TestUnpaidOrdersAreCappedAndExpire(t *testing.T) {
	if shop.Local() {
		t.Fatal("this scenario needs the container stack's short payment hold (harness.PaymentHold), not SHOP_E2E_STACK=local")
	}
	token := apiToken(t, harness.Alice)
	// Start from no unpaid orders: earlier scenarios may have left some (they expire, but
	// not before this one begins).
	var mine []heldOrder
	if st := apiGet(t, token, "/api/orders?limit=200", &mine); st != http.StatusOK {
		t.Fatalf("my orders: %d", st)
	}
	for _, o := range mine {
		if o.Status == "pending" {
			if a := apiSend(t, token, http.MethodPost, "/api/orders/"+o.ID+"/cancel", ""); a.status != http.StatusOK && a.status != http.StatusConflict {
				t.Fatalf("cancelling a left-over order: %d %s", a.status, a.body)
			}
		}
	}

	start := catalogStock(t, towelID)
	twoTowels := `{"items":[{"productId":"` + towelID + `","quantity":2}]}`
	var placed []heldOrder
	for i := range 3 {
		a := apiSend(t, token, http.MethodPost, "/api/orders", twoTowels)
		var o heldOrder
		if a.status != http.StatusCreated || json.Unmarshal(a.body, &o) != nil {
			t.Fatalf("order %d: %d %s", i+1, a.status, a.body)
		}
		if o.PaymentDueAt == nil || o.PaymentDueAt.Sub(o.CreatedAt) != harness.PaymentHold {
			t.Fatalf("order %d is due %v, placed %v: want the stack's hold of %s", i+1, o.PaymentDueAt, o.CreatedAt, harness.PaymentHold)
		}
		placed = append(placed, o)
	}
	if got := catalogStock(t, towelID); got != start-6 {
		t.Fatalf("stock %d after three orders of two, want %d", got, start-6)
	}

	// The fourth is refused: 409, problem+json that says why, nothing taken.
	a := apiSend(t, token, http.MethodPost, "/api/orders", twoTowels)
	var refusal struct {
		Detail string `json:"detail"`
		Reason string `json:"reason"`
	}
	if a.status != http.StatusConflict || json.Unmarshal(a.body, &refusal) != nil ||
		refusal.Reason != "too_many_unpaid_orders" || !strings.Contains(refusal.Detail, "3 unpaid orders") {
		t.Fatalf("a fourth unpaid order: %d %s, want 409 too_many_unpaid_orders", a.status, a.body)
	}
	// Beyond the shop's limits of one order: 422 naming the field.
	if a := apiSend(t, token, http.MethodPost, "/api/orders", `{"items":[{"productId":"`+towelID+`","quantity":11}]}`); a.status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(a.body), `"items[0].quantity"`) {
		t.Fatalf("11 of one product: %d %s, want 422 naming items[0].quantity", a.status, a.body)
	}
	if got := catalogStock(t, towelID); got != start-6 {
		t.Fatalf("stock %d after the refusals, want %d", got, start-6)
	}

	// One is paid in time and keeps its stock.
	paid := placed[0].ID
	payBody := `{"card":{"number":"4242424242424242","expMonth":12,"expYear":2031,"cvc":"123","holder":"Alice"}}`
	if a := apiSend(t, token, http.MethodPost, "/api/orders/"+paid+"/pay", payBody); a.status != http.StatusOK {
		t.Fatalf("paying in time: %d %s", a.status, a.body)
	}

	// The other two expire after the hold; their stock is back for everyone.
	for _, o := range placed[1:] {
		var got heldOrder
		if !eventually(time.Until(*o.PaymentDueAt)+30*time.Second, func() bool {
			return apiGet(t, token, "/api/orders/"+o.ID, &got) == http.StatusOK && got.Status != "pending"
		}) {
			t.Fatalf("order %s still %s 30s after its deadline %v", o.ID, got.Status, o.PaymentDueAt)
		}
		if got.Status != "cancelled" || got.CancelReason != "expired" || time.Now().Before(*o.PaymentDueAt) {
			t.Fatalf("order %s: %+v, want cancelled as expired after %v", o.ID, got, o.PaymentDueAt)
		}
	}
	if got := catalogStock(t, towelID); got != start-2 {
		t.Fatalf("stock %d after two orders expired, want %d (only the paid order's two kept)", got, start-2)
	}
	var p heldOrder
	if apiGet(t, token, "/api/orders/"+paid, &p); p.Status != "paid" {
		t.Fatalf("the order paid in time is %s", p.Status)
	}

	// Paying an expired order is refused before anything is charged.
	expired := placed[1].ID
	if a := apiSend(t, token, http.MethodPost, "/api/orders/"+expired+"/pay", payBody); a.status != http.StatusConflict ||
		!strings.Contains(string(a.body), `"reason":"order_expired"`) {
		t.Fatalf("paying an expired order: %d %s, want 409 order_expired", a.status, a.body)
	}
	if ps := paymentsOf(t, token, expired); len(ps) != 0 {
		t.Fatalf("payments of the expired order: %+v, want none", ps)
	}

	// With the expired orders gone from the count, the shopper may order again.
	a = apiSend(t, token, http.MethodPost, "/api/orders", twoTowels)
	var again heldOrder
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &again) != nil {
		t.Fatalf("ordering again after the expiry: %d %s", a.status, a.body)
	}
	if a := apiSend(t, token, http.MethodPost, "/api/orders/"+again.ID+"/cancel", ""); a.status != http.StatusOK {
		t.Fatalf("cancelling it: %d %s", a.status, a.body)
	}

	// The web shop tells the shopper in words.
	b := harness.NewBrowser(t)
	b.Open(shop.WebappURL + "/orders/" + expired)
	b.KeycloakLogin(harness.Alice)
	b.WaitFor("#expired")
	if text := b.Text("#expired"); !strings.Contains(text, "This order expired") || !strings.Contains(text, "place a new order") {
		t.Fatalf("the expired order's page says %q", text)
	}
	if b.Has("#pay-order") {
		t.Fatal("the expired order's page offers to pay")
	}
	if dir := os.Getenv("SHOP_SCREENSHOTS"); dir != "" {
		b.Screenshot(filepath.Join(dir, "13-order-expired.png"))
	}
}
