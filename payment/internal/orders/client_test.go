package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/orders"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/svcauth"
)

func alice() payment.Actor {
	return payment.Actor{Subject: "alice", Credential: payment.Credential{Token: "alice-token"}}
}

// TestRedirectsAreNotFollowed: a redirect from the order service must carry neither the
// caller's token nor the service's to wherever it points.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var stolen atomic.Int64
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
	}))
	defer elsewhere.Close()
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	})
	upstream := httptest.NewServer(redirect)
	defer upstream.Close()
	c, err := orders.New(upstream.URL, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Order(t.Context(), alice(), uuid.NewString()); !errors.Is(err, payment.ErrOrderServiceUnavailable) {
		t.Fatalf("err %v, want ErrOrderServiceUnavailable", err)
	}

	internal := httptest.NewTLSServer(redirect)
	defer internal.Close()
	client := internal.Client()
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(elsewhere.Certificate())
	n, err := orders.NewNotices(internal.URL, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(t.Context(), payment.Notice{ID: "n", Kind: payment.NoticePaid, OrderID: uuid.NewString()}); err == nil {
		t.Fatal("a redirect was taken as an acknowledgement")
	}
	if stolen.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
}

// TestNothingIsSentForBadInput: ids that are not UUIDs never reach a URL, and a notice of
// an unknown kind is not sent anywhere.
func TestNothingIsSentForBadInput(t *testing.T) {
	var calls atomic.Int64
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	upstream := httptest.NewServer(count)
	defer upstream.Close()
	internal := httptest.NewTLSServer(count)
	defer internal.Close()
	c, err := orders.New(upstream.URL, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := orders.NewNotices(internal.URL, internal.Client())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../admin/products", "", uuid.NewString() + "/cancel", "%2e%2e"} {
		if _, err := c.Order(t.Context(), alice(), id); !errors.Is(err, payment.ErrUnknownOrder) {
			t.Errorf("%q: %v", id, err)
		}
		if err := n.Send(t.Context(), payment.Notice{ID: "n", Kind: payment.NoticePaid, OrderID: id}); err == nil {
			t.Errorf("notice for %q: sent", id)
		}
	}
	if err := n.Send(t.Context(), payment.Notice{ID: "n", Kind: "cancelled", OrderID: uuid.NewString()}); err == nil {
		t.Error("a notice of an unknown kind was sent")
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests reached the order service", calls.Load())
	}
}

// TestNoticesReachTheirRoute: each kind of notice goes to its route with its body, and
// only 2xx and 409 count as acknowledged.
func TestNoticesReachTheirRoute(t *testing.T) {
	type call struct {
		path, key, requestID string
		body                 map[string]any
	}
	var (
		mu     sync.Mutex
		calls  []call
		status atomic.Int64
	)
	internal := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls = append(calls, call{r.Method + " " + r.URL.Path, r.Header.Get("Idempotency-Key"), r.Header.Get("X-Request-Id"), body})
		mu.Unlock()
		w.WriteHeader(int(status.Load()))
	}))
	defer internal.Close()
	n, err := orders.NewNotices(internal.URL, internal.Client())
	if err != nil {
		t.Fatal(err)
	}
	order, pay, refund := uuid.NewString(), uuid.NewString(), uuid.NewString()
	paid := payment.Notice{ID: "n1", Kind: payment.NoticePaid, OrderID: order, PaymentID: pay,
		Amount: payment.Money{Amount: 2599, Currency: "EUR"}, RequestID: "req-1"}
	refunded := payment.Notice{ID: "n2", Kind: payment.NoticeRefunded, OrderID: order, PaymentID: pay, RefundID: refund,
		Amount: payment.Money{Amount: 599, Currency: "EUR"}, RefundedTotal: 1000, FullyRefunded: false}

	for _, s := range []int{200, 204, 409} {
		status.Store(int64(s))
		if err := n.Send(t.Context(), paid); err != nil {
			t.Errorf("paid notice answered %d: %v", s, err)
		}
	}
	for _, s := range []int{401, 403, 404, 422, 500, 503} {
		status.Store(int64(s))
		if err := n.Send(t.Context(), refunded); !errors.Is(err, payment.ErrOrderServiceUnavailable) {
			t.Errorf("refund notice answered %d: %v, want a retry", s, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	first, last := calls[0], calls[len(calls)-1]
	if first.path != "POST /internal/orders/"+order+"/paid" || first.key != "paid-"+pay || first.requestID != "req-1" ||
		first.body["paymentId"] != pay || first.body["amount"].(map[string]any)["amount"] != 2599.0 ||
		first.body["amount"].(map[string]any)["currency"] != "EUR" || len(first.body) != 2 {
		t.Errorf("paid notice: %+v", first)
	}
	if last.path != "POST /internal/orders/"+order+"/refunded" || last.key != "refund-"+refund || last.requestID != "" ||
		last.body["paymentId"] != pay || last.body["refundId"] != refund || last.body["amount"] != 1000.0 ||
		last.body["fullyRefunded"] != false || len(last.body) != 4 {
		t.Errorf("refund notice (the refunded total, not the increment): %+v", last)
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	for _, base := range []string{"", "localhost:8081", "ftp://orders", "http://"} {
		if _, err := orders.New(base, time.Second, nil); err == nil {
			t.Errorf("base URL %q accepted", base)
		}
	}
	if _, err := orders.New("http://orders", 0, nil); err == nil {
		t.Error("a zero timeout was accepted")
	}
	for _, base := range []string{"http://order:8444", "order:8444", ""} {
		if _, err := orders.NewNotices(base, http.DefaultClient); err == nil {
			t.Errorf("internal URL %q accepted", base)
		}
	}
}

// TestOrderIsReadWithTheExchangedToken: with token exchange on, the order service sees the
// token exchanged for it, never the caller's own; when Keycloak refuses or cannot be
// asked, nothing is sent to the order service.
func TestOrderIsReadWithTheExchangedToken(t *testing.T) {
	id := uuid.NewString()
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "userId": "alice", "status": "pending",
			"total": map[string]any{"amount": 2599, "currency": "EUR"}})
	}))
	defer upstream.Close()
	c, _ := orders.New(upstream.URL, time.Second, func(_ context.Context, token string) (string, error) {
		if token != "alice-token" {
			return "", errors.New("exchanged the wrong token")
		}
		return "for-orders-only", nil
	})
	if o, err := c.Order(t.Context(), alice(), id); err != nil || o.Total.Amount != 2599 {
		t.Fatalf("order %+v, %v", o, err)
	}
	if len(seen) != 1 || seen[0] != "Bearer for-orders-only" {
		t.Fatalf("the order service saw %q, want only the exchanged token", seen)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"refused", fmt.Errorf("%w: invalid_token", svcauth.ErrExchangeRefused), payment.ErrSessionEnded},
		{"Keycloak down", errors.New("connection refused"), payment.ErrOrderServiceUnavailable},
	} {
		c, _ := orders.New(upstream.URL, time.Second, func(context.Context, string) (string, error) { return "", tc.err })
		if _, err := c.Order(t.Context(), alice(), id); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if len(seen) != 1 {
		t.Fatalf("the order was read without an exchanged token: %q", seen)
	}
}
