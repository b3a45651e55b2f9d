package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"example.com/shop/order/internal/payment"
	"example.com/shop/platform/svcauth"
)

var card = payment.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2099, CVC: "123", Holder: "Alice"}

func charge(orderID string) payment.Charge {
	return payment.Charge{OrderID: orderID, Card: card, Authorization: "Bearer the-shoppers-token", IdempotencyKey: "order:o-1:attempt:0", RequestID: "req-1"}
}

// answering returns a payment service that answers every charge with status and body.
func answering(t *testing.T, status int, body string) *payment.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := payment.New(srv.URL, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChargeSendsTheShoppersTokenAndNoAmount(t *testing.T) {
	var got *http.Request
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"pay-1","orderId":"o-1","amount":{"amount":2580,"currency":"EUR"},"status":"approved"}`)
	}))
	defer srv.Close()
	c, err := payment.New(srv.URL+"/", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Charge(context.Background(), charge("o-1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "pay-1" || p.Amount.Amount != 2580 {
		t.Fatalf("payment %+v", p)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/api/payments" {
		t.Fatalf("%s %s", got.Method, got.URL.Path)
	}
	for h, want := range map[string]string{
		"Authorization": "Bearer the-shoppers-token", "Idempotency-Key": "order:o-1:attempt:0",
		"X-Request-Id": "req-1", "Content-Type": "application/json",
	} {
		if got.Header.Get(h) != want {
			t.Errorf("%s = %q, want %q", h, got.Header.Get(h), want)
		}
	}
	cardSent, _ := body["card"].(map[string]any)
	if len(body) != 2 || body["orderId"] != "o-1" || cardSent["number"] != card.Number || cardSent["cvc"] != "123" {
		t.Fatalf("body %v: want exactly orderId and card", body)
	}
}

func TestChargeOutcomes(t *testing.T) {
	approved := `{"id":"pay-1","orderId":"o-1","amount":{"amount":100,"currency":"EUR"},"status":"approved"}`
	cases := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"approved, replayed as 200", 200, approved, nil},
		{"declined", 402, `{"status":402,"paymentId":"pay-2","reason":"insufficient_funds"}`, payment.ErrDeclined},
		{"declined without a body", 402, ``, payment.ErrDeclined},
		{"invalid card", 422, `{"status":422,"detail":"card number fails the Luhn check"}`, payment.ErrRefused},
		{"already paid", 409, `{"status":409,"detail":"the order already has an approved payment"}`, payment.ErrRefused},
		{"approved but another order", 201, strings.Replace(approved, "o-1", "o-2", 1), payment.ErrUpstream},
		{"2xx but declined", 201, strings.Replace(approved, "approved", "declined", 1), payment.ErrUpstream},
		{"2xx without an id", 201, `{"status":"approved","orderId":"o-1"}`, payment.ErrUpstream},
		{"2xx not JSON", 201, `<html>`, payment.ErrUpstream},
		{"processor failure, recorded", 502, `{"status":502,"paymentId":"pay-3","reason":"processor_error"}`, payment.ErrFailed},
		{"bad gateway, nothing recorded", 502, `{"status":502}`, payment.ErrUpstream},
		{"internal error", 500, ``, payment.ErrUpstream},
		{"overloaded", 503, ``, payment.ErrUnavailable},
		{"rate limited", 429, ``, payment.ErrUnavailable},
		{"upstream timeout", 504, ``, payment.ErrTimeout},
		{"token refused", 401, ``, payment.ErrUpstream},
		{"order unknown there", 404, ``, payment.ErrUpstream},
		{"redirect", 302, ``, payment.ErrUpstream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := answering(t, tc.status, tc.body).Charge(context.Background(), charge("o-1"))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}

	var declined *payment.DeclinedError
	_, err := answering(t, 402, `{"paymentId":"pay-2","reason":"insufficient_funds"}`).Charge(context.Background(), charge("o-1"))
	if !errors.As(err, &declined) || declined.PaymentID != "pay-2" || declined.Reason != "insufficient_funds" {
		t.Fatalf("decline %+v", err)
	}
	var refused *payment.RefusedError
	_, err = answering(t, 422, `{"detail":"`+strings.Repeat("é", 400)+`"}`).Charge(context.Background(), charge("o-1"))
	if !errors.As(err, &refused) || refused.Status != 422 || len(refused.Detail) > 300 || !strings.HasPrefix(refused.Detail, "é") {
		t.Fatalf("refusal %+v: want its status and a clipped detail", err)
	}
}

// TestRedirectsAreNotFollowed: a redirect would carry the shopper's token elsewhere.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/api/payments", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, _ := payment.New(srv.URL, time.Second, nil)
	if _, err := c.Charge(context.Background(), charge("o-1")); !errors.Is(err, payment.ErrUpstream) || followed {
		t.Fatalf("err %v, followed %v", err, followed)
	}
}

func TestUnreachableAndSlow(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	down, _ := payment.New("http://"+addr, time.Second, nil)
	if _, err := down.Charge(context.Background(), charge("o-1")); !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	c, _ := payment.New(slow.URL, 100*time.Millisecond, nil)
	start := time.Now()
	_, err := c.Charge(context.Background(), charge("o-1"))
	if !errors.Is(err, payment.ErrTimeout) {
		t.Fatalf("slow: %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("waited %s for a 100ms timeout", waited)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, u := range []string{"", "localhost:8082", "ftp://x", "http://"} {
		if _, err := payment.New(u, time.Second, nil); err == nil {
			t.Errorf("accepted URL %q", u)
		}
	}
	if _, err := payment.New("http://localhost:8082", 0, nil); err == nil {
		t.Error("accepted a zero timeout")
	}
}

// TestCardNeverPrints: formatting or logging a card shows only its last four digits.
func TestCardNeverPrints(t *testing.T) {
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("charging", "card", card)
	for _, s := range []string{fmt.Sprint(card), fmt.Sprintf("%v %+v %#v %s", card, card, card, card), logs.String()} {
		if strings.Contains(strings.ReplaceAll(s, " ", ""), "42424242") || strings.Contains(s, "123") || strings.Contains(s, "2099") {
			t.Fatalf("card data printed: %s", s)
		}
		if !strings.Contains(s, "4242") {
			t.Fatalf("last four missing: %s", s)
		}
	}
}

// TestDefinitive: only answers that end an attempt without a charge let the next attempt
// use a new key; after anything else the charge may exist and the key must be reused.
func TestDefinitive(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   bool
	}{
		{402, `{"paymentId":"p","reason":"card_declined"}`, true},
		{502, `{"paymentId":"p","reason":"processor_error"}`, true},
		{422, `{"detail":"invalid","errors":[{"field":"card.number","message":"fails the Luhn check"}]}`, true},
		{422, `{"detail":"this Idempotency-Key was used with a different request"}`, false},
		{409, `{"detail":"a charge for this order is in flight"}`, false},
		{502, `{}`, false},
		{503, ``, false},
		{504, ``, false},
		{500, ``, false},
	}
	for _, tc := range cases {
		_, err := answering(t, tc.status, tc.body).Charge(context.Background(), charge("o-1"))
		if got := payment.Definitive(err); got != tc.want {
			t.Errorf("%d %s: Definitive %v, want %v (%v)", tc.status, tc.body, got, tc.want, err)
		}
	}
	if payment.Definitive(errors.New("dial tcp: connection refused")) || payment.Definitive(nil) {
		t.Error("a transport error or success counted as definitive")
	}
}

// TestChargeSendsTheExchangedToken: with token exchange on, the payment service sees the
// token exchanged for it, never the shopper's own; when Keycloak refuses the exchange or
// cannot be asked, nothing is sent to the payment service at all.
func TestChargeSendsTheExchangedToken(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"pay-1","orderId":"o-1","amount":{"amount":2580,"currency":"EUR"},"status":"approved"}`)
	}))
	defer srv.Close()
	exchanged := func(ctx context.Context, token string) (string, error) {
		if token != "the-shoppers-token" {
			return "", fmt.Errorf("exchanged %q", token)
		}
		return "for-payment-only", nil
	}
	c, _ := payment.New(srv.URL, time.Second, exchanged)
	if _, err := c.Charge(context.Background(), charge("o-1")); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "Bearer for-payment-only" {
		t.Fatalf("the payment service saw %q, want only the exchanged token", seen)
	}

	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"refused", fmt.Errorf("%w: invalid_token", svcauth.ErrExchangeRefused), payment.ErrSessionEnded},
		{"Keycloak down", errors.New("dial tcp: connection refused"), payment.ErrUnavailable},
	} {
		c, _ := payment.New(srv.URL, time.Second, func(context.Context, string) (string, error) { return "", tc.err })
		if _, err := c.Charge(context.Background(), charge("o-1")); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if len(seen) != 1 {
		t.Fatalf("a charge reached the payment service without an exchanged token: %q", seen)
	}
}

// TestChargeTellsAReplay: an approval the payment service marks Idempotent-Replayed is a
// charge an earlier request made, and the checkout must know it (httpapi's gaveUp).
func TestChargeTellsAReplay(t *testing.T) {
	for _, replayed := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if replayed {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"pay-1","orderId":"o-1","amount":{"amount":100,"currency":"EUR"},"status":"approved"}`)
		}))
		c, err := payment.New(srv.URL, time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Charge(context.Background(), charge("o-1"))
		srv.Close()
		if err != nil || p.Replayed != replayed {
			t.Fatalf("replayed %v: payment %+v, err %v", replayed, p, err)
		}
	}
}
