package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// apiGet sends GET path to the gateway with token and decodes the JSON answer into out
// (when the status is 200); it returns the status.
func apiGet(t *testing.T, token, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, shop.GatewayURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

// order and payment are the parts of the API's answers the scenarios look at.
type order struct {
	ID     string `json:"id"`
	Number int64  `json:"number"`
	Status string `json:"status"`
}

type payment struct {
	ID      string `json:"id"`
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
}

// paymentsOf lists the caller's payments for one order.
func paymentsOf(t *testing.T, token, orderID string) []payment {
	t.Helper()
	var all []payment
	if st := apiGet(t, token, "/api/payments?limit=200", &all); st != http.StatusOK {
		t.Fatalf("listing payments: %d", st)
	}
	var out []payment
	for _, p := range all {
		if p.OrderID == orderID {
			out = append(out, p)
		}
	}
	return out
}

// approved counts the approved payments among ps.
func approved(ps []payment) int {
	n := 0
	for _, p := range ps {
		if strings.EqualFold(p.Status, "approved") {
			n++
		}
	}
	return n
}

// createOrder places an order for one unit of product through the gateway and returns its
// id; the 201 is the acknowledgement.
func createOrder(t *testing.T, token, productID string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, shop.GatewayURL+"/api/orders",
		strings.NewReader(`{"items":[{"productId":"`+productID+`","quantity":1}]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o order
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating an order: %d %v", resp.StatusCode, err)
	}
	return o.ID
}

// readAll reads r if there is one (exec output of a container).
func readAll(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	return io.ReadAll(r)
}
