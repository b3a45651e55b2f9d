// Package orders is the payment service's client of the order service: it reads the order a
// charge is for, with the caller's access token propagated (JWT propagation), and reports
// refunds. It implements payment.Orders and the outbox's Sender.
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
)

// maxBody bounds what is read from the order service: a misbehaving upstream cannot make
// this service buffer without limit.
const maxBody = 1 << 20

// Client calls the order service.
type Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
	now     func() time.Time
}

var _ payment.Orders = (*Client)(nil)

// New returns a client of the order service at baseURL (e.g. http://localhost:8081). Every
// call gives up after timeout.
func New(baseURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("orders: base URL %q must be an absolute http(s) URL", baseURL)
	}
	if timeout <= 0 {
		return nil, errors.New("orders: timeout must be positive")
	}
	return &Client{
		base: u,
		http: &http.Client{
			// A redirect would carry the caller's token somewhere this service did not
			// choose; the order service has no reason to send one, so none is followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: timeout,
		now:     time.Now,
	}, nil
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
	resp, err := c.do(ctx, http.MethodGet, "/api/orders/"+url.PathEscape(id), nil, as.Credential.Token, as.RequestID)
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

// refundedJSON is the body of POST /api/orders/{id}/refunded. Amount is the payment's
// refunded total so far in minor units (see payment.Notice.RefundedTotal).
type refundedJSON struct {
	PaymentID     string `json:"paymentId"`
	RefundID      string `json:"refundId"`
	Amount        int64  `json:"amount"`
	FullyRefunded bool   `json:"fullyRefunded"`
}

// Send implements the outbox's Sender: POST /api/orders/{id}/refunded with the admin's
// token. The body carries the refunded total, so a notice delivered twice or late changes
// nothing; the refund id also goes as the Idempotency-Key. 2xx is an acknowledgement; so is
// 409, which the order service answers when the order is already refunded.
func (c *Client) Send(ctx context.Context, n payment.Notice, cred payment.Credential) error {
	if !cred.Usable(c.now()) {
		return payment.ErrNoCredential
	}
	body, err := json.Marshal(refundedJSON{PaymentID: n.PaymentID, RefundID: n.RefundID,
		Amount: n.RefundedTotal, FullyRefunded: n.FullyRefunded})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodPost, "/api/orders/"+url.PathEscape(n.OrderID)+"/refunded", body, cred.Token, n.RequestID,
		"Idempotency-Key", "refund-"+n.RefundID)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("%w: refund notice answered %d", payment.ErrOrderServiceUnavailable, resp.StatusCode)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, token, requestID string, header ...string) (*http.Response, error) {
	u := c.base.JoinPath(path)
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
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
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
