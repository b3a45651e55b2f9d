// Package orders is the payment service's client of the order service, on its two
// listeners:
//
//   - Client reads the order a charge is for from the public API as the caller: with the
//     caller's access token exchanged for one addressed to the order service alone (OAuth
//     2.0 Token Exchange, platform/svcauth.Exchanger), or propagated unchanged when no
//     exchange is configured. The order service shows the order only to its owner or an
//     admin, so a shopper cannot have someone else's order charged.
//   - Notices delivers the outbox's notices (paid, refunded) to the internal listener. No
//     user is behind a notice: the payment service proves who it is itself, with its
//     certificate (mutual TLS) and its client-credentials token.
//
// They implement payment.Orders and the outbox's Sender.
package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/telemetry"
)

// maxBody bounds what is read from the order service: a misbehaving upstream cannot make
// this service buffer without limit.
const maxBody = 1 << 20

// Exchange trades the caller's access token for one addressed to the order service
// (svcauth.Exchanger.Exchange).
type Exchange func(ctx context.Context, token string) (string, error)

// Client reads orders from the order service's public API.
type Client struct {
	base     *url.URL
	http     *http.Client
	timeout  time.Duration
	exchange Exchange
}

var _ payment.Orders = (*Client)(nil)

// New returns a client of the order service at baseURL (e.g. http://localhost:8081). Every
// call gives up after timeout. exchange narrows the caller's token for each read; nil
// sends it unchanged.
func New(baseURL string, timeout time.Duration, exchange Exchange) (*Client, error) {
	u, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, errors.New("orders: timeout must be positive")
	}
	return &Client{base: u, http: noRedirects(telemetry.Client(&http.Client{})), timeout: timeout, exchange: exchange}, nil
}

func parseBase(baseURL string) (*url.URL, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("orders: base URL %q must be an absolute http(s) URL", baseURL)
	}
	return u, nil
}

// noRedirects makes c answer a redirect with the redirect itself. A redirect would carry
// the bearer token somewhere this service did not choose; the order service has no reason
// to send one, so none is followed.
func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// orderJSON is the part of the order service's Order this service reads.
type orderJSON struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Status string `json:"status"`
	Total  struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"total"`
}

// Order implements payment.Orders: GET /api/orders/{id} with the actor's token.
func (c *Client) Order(ctx context.Context, as payment.Actor, id string) (payment.Order, error) {
	// The service validates ids before they get here; checking again keeps a path like
	// "../admin" from ever reaching the URL.
	if !payment.ValidID(id) {
		return payment.Order{}, payment.ErrUnknownOrder
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	header := http.Header{}
	if token := as.Credential.Token; token != "" {
		if c.exchange != nil {
			narrowed, err := c.exchange(ctx, token)
			switch {
			case errors.Is(err, svcauth.ErrExchangeRefused):
				return payment.Order{}, fmt.Errorf("%w: %v", payment.ErrSessionEnded, err)
			case err != nil:
				return payment.Order{}, fmt.Errorf("%w: %v", payment.ErrOrderServiceUnavailable, err)
			}
			token = narrowed
		}
		header.Set("Authorization", "Bearer "+token)
	}
	if as.RequestID != "" {
		header.Set("X-Request-Id", as.RequestID)
	}
	resp, err := do(ctx, c.http, c.base, http.MethodGet, "/api/orders/"+url.PathEscape(id), nil, header)
	if err != nil {
		return payment.Order{}, err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return payment.Order{}, payment.ErrUnknownOrder
	case resp.StatusCode != http.StatusOK:
		return payment.Order{}, fmt.Errorf("%w: GET order answered %d", payment.ErrOrderServiceUnavailable, resp.StatusCode)
	}
	var o orderJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&o); err != nil {
		return payment.Order{}, fmt.Errorf("%w: unreadable order: %v", payment.ErrOrderServiceUnavailable, err)
	}
	// An order this service cannot charge correctly is the order service's fault, not the
	// caller's: answer 502 rather than charge a wrong amount.
	if o.ID != id || o.UserID == "" || o.Total.Amount <= 0 || !currency(o.Total.Currency) {
		return payment.Order{}, fmt.Errorf("%w: the order service sent an incomplete order", payment.ErrOrderServiceUnavailable)
	}
	return payment.Order{ID: o.ID, UserID: o.UserID, Status: o.Status,
		Total: payment.Money{Amount: o.Total.Amount, Currency: o.Total.Currency}}, nil
}

// Notices delivers the outbox's notices to the order service's internal listener. It
// implements the outbox's Sender.
type Notices struct {
	base *url.URL
	http *http.Client
}

// NewNotices returns the sender of notices to the order service's internal listener at
// baseURL (e.g. https://localhost:8444). client must authenticate the payment service
// there, and the order service to it: svcauth.NewClient gives one that presents the
// payment service's certificate and client-credentials token, accepts no server but the
// order service, and bounds each call with a timeout.
func NewNotices(baseURL string, client *http.Client) (*Notices, error) {
	u, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		// The internal listener speaks mutual TLS only; plain HTTP would also put the
		// service's token on the wire in clear.
		return nil, fmt.Errorf("orders: the internal URL %q must be https", baseURL)
	}
	c := *client
	return &Notices{base: u, http: noRedirects(&c)}, nil
}

// paidJSON is the body of POST /internal/orders/{id}/paid.
type paidJSON struct {
	PaymentID string    `json:"paymentId"`
	Amount    moneyJSON `json:"amount"`
}

type moneyJSON struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// refundedJSON is the body of POST /internal/orders/{id}/refunded. Amount is the payment's
// refunded total so far in minor units (see payment.Notice.RefundedTotal).
type refundedJSON struct {
	PaymentID     string `json:"paymentId"`
	RefundID      string `json:"refundId"`
	Amount        int64  `json:"amount"`
	FullyRefunded bool   `json:"fullyRefunded"`
}

// Send delivers n: POST /internal/orders/{id}/paid or .../refunded. Both bodies are
// idempotent on the order service's side (a payment id it already recorded, a refunded
// total it already knows), so a notice delivered twice or late changes nothing. 2xx is an
// acknowledgement; so is 409, the order service's final word that the notice cannot apply
// (already refunded; paid by another payment; cancelled, which it logs for a refund).
func (s *Notices) Send(ctx context.Context, n payment.Notice) error {
	if !payment.ValidID(n.OrderID) {
		return fmt.Errorf("orders: notice %s names no valid order id", n.ID)
	}
	var (
		body any
		key  string
	)
	switch n.Kind {
	case payment.NoticePaid:
		body, key = paidJSON{PaymentID: n.PaymentID, Amount: moneyJSON(n.Amount)}, "paid-"+n.PaymentID
	case payment.NoticeRefunded:
		body, key = refundedJSON{PaymentID: n.PaymentID, RefundID: n.RefundID, Amount: n.RefundedTotal,
			FullyRefunded: n.FullyRefunded}, "refund-"+n.RefundID
	default:
		return fmt.Errorf("orders: notice %s of unknown kind %q", n.ID, n.Kind)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	path := "/internal/orders/" + url.PathEscape(n.OrderID) + "/" + string(n.Kind)
	header := http.Header{"Idempotency-Key": {key}}
	if n.RequestID != "" {
		// The request that made the approval or refund, to follow it across the services' logs.
		header.Set("X-Request-Id", n.RequestID)
	}
	resp, err := do(ctx, s.http, s.base, http.MethodPost, path, raw, header)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusConflict:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The order service does not accept this service's token or certificate: a
		// configuration problem (client, role, certificate) that retrying will not fix
		// by itself, but fixing it will, so the notice waits.
		return fmt.Errorf("%w: %s notice refused with %d: check the payment service's client credentials and certificate",
			payment.ErrOrderServiceUnavailable, n.Kind, resp.StatusCode)
	}
	return fmt.Errorf("%w: %s notice answered %d", payment.ErrOrderServiceUnavailable, n.Kind, resp.StatusCode)
}

// do sends one request to base+path with the given headers.
func do(ctx context.Context, client *http.Client, base *url.URL, method, path string, body []byte, header http.Header) (*http.Response, error) {
	u := base.JoinPath(path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, fmt.Errorf("%w: %s %s", payment.ErrOrderServiceTimeout, method, u.Path)
		}
		// The error text names the URL, never the token (it travels in a header).
		return nil, fmt.Errorf("%w: %v", payment.ErrOrderServiceUnavailable, err)
	}
	return resp, nil
}

// drain reads what is left of a response (bounded) so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
}

func currency(s string) bool {
	return len(s) == 3 && strings.ToUpper(s) == s && strings.IndexFunc(s, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0
}
