package orders_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/payment/internal/orders"
	"example.com/shop/payment/internal/payment"
)

func alice() payment.Actor {
	return payment.Actor{Subject: "alice", Credential: payment.Credential{Token: "alice-token", Expiry: time.Now().Add(time.Minute)}}
}

// TestRedirectsAreNotFollowed: a redirect from the order service must not carry the
// caller's token to wherever it points.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var stolen atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
	}))
	defer elsewhere.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer upstream.Close()
	c, err := orders.New(upstream.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Order(t.Context(), alice(), uuid.NewString())
	if !errors.Is(err, payment.ErrOrderServiceUnavailable) {
		t.Fatalf("err %v, want ErrOrderServiceUnavailable", err)
	}
	if stolen.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// TestNothingIsSentForBadInput: ids that are not UUIDs never reach a URL, and a notice is
// never sent without a usable token.
func TestNothingIsSentForBadInput(t *testing.T) {
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer upstream.Close()
	c, err := orders.New(upstream.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../admin/products", "", uuid.NewString() + "/cancel", "%2e%2e"} {
		if _, err := c.Order(t.Context(), alice(), id); !errors.Is(err, payment.ErrUnknownOrder) {
			t.Errorf("%q: %v", id, err)
		}
	}
	expired := payment.Credential{Token: "old", Expiry: time.Now().Add(-time.Minute)}
	for _, cred := range []payment.Credential{{}, expired} {
		if err := c.Send(t.Context(), payment.Notice{OrderID: uuid.NewString()}, cred); !errors.Is(err, payment.ErrNoCredential) {
			t.Errorf("send with %v: %v", cred, err)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests reached the order service", calls.Load())
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	for _, base := range []string{"", "localhost:8081", "ftp://orders", "http://"} {
		if _, err := orders.New(base, time.Second); err == nil {
			t.Errorf("base URL %q accepted", base)
		}
	}
	if _, err := orders.New("http://orders", 0); err == nil {
		t.Error("a zero timeout was accepted")
	}
}
