// Package gateway is the webapp's client of the shop API, reached through the API gateway.
// Every call carries the logged-in user's DPoP-bound access token with a fresh proof of
// its key (or no token, for the public catalog) and the request id; every answer that is not a success becomes an
// *Error carrying the status and the problem+json details the pages show.
package gateway

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
	"strconv"
	"strings"
	"time"

	"example.com/shop/platform/telemetry"
)

// maxBody bounds what is read from an answer.
const maxBody = 4 << 20

// Client calls the API at one base URL.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the gateway at baseURL; each call is bounded by timeout.
func New(baseURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: %q is not an http(s) URL", baseURL)
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: telemetry.Client(&http.Client{
		Timeout: timeout,
		// An API answer is never a redirect the webapp should follow with a token attached.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	})}, nil
}

// As returns a caller that presents the access token as a bearer token; "" calls
// anonymously.
func (c *Client) As(token string) *Caller { return &Caller{c: c, token: token} }

// Prover signs DPoP proofs (RFC 9449) with the key a token is bound to; *dpop.Key is one.
type Prover interface {
	Proof(method, url, accessToken, nonce string) (string, error)
}

// AsBound returns a caller that presents a DPoP-bound access token: `Authorization: DPoP`,
// and on every call a fresh proof by key for that call's method and URL.
func (c *Client) AsBound(token string, key Prover) *Caller {
	return &Caller{c: c, token: token, key: key}
}

// Caller makes API calls on behalf of one user.
type Caller struct {
	c     *Client
	token string
	key   Prover
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the webapp's request id, which is sent along as
// X-Request-Id so the gateway's and services' logs line up with the webapp's.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// FieldError is one invalid field reported by a 422.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an API call that did not succeed: an answer with an error status, or no answer.
type Error struct {
	// Status is the answer's status; 502 when the gateway could not be reached and 504 when
	// it did not answer in time.
	Status int
	Title  string
	Detail string
	Fields []FieldError
	// RetryAfter is the wait a 429 or 503 asks for.
	RetryAfter time.Duration
	// Reason and PaymentID describe a declined payment (402).
	Reason    string
	PaymentID string
	// Err is the transport failure when there was no answer.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("gateway: %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("gateway: %d %s: %s", e.Status, e.Title, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// problem is the problem+json body (RFC 9457) with the shop's extensions.
type problem struct {
	Title      string       `json:"title"`
	Detail     string       `json:"detail"`
	Errors     []FieldError `json:"errors"`
	RetryAfter int          `json:"retryAfter"`
	Reason     string       `json:"reason"`
	PaymentID  string       `json:"paymentId"`
}

type call struct {
	method, path string
	query        url.Values
	body         any
	// idempotencyKey makes a retried create or charge return the first answer.
	idempotencyKey string
	out            any
}

func (c *Caller) do(ctx context.Context, k call) error {
	var body []byte
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return err
		}
		body = b
	}
	u := c.c.base + k.path
	if len(k.query) > 0 {
		u += "?" + k.query.Encode()
	}
	resp, err := c.send(ctx, k, u, body, "")
	if err != nil {
		return err
	}
	// A server may ask for a nonce in the proof (RFC 9449 section 9): once, with a new
	// proof, which is safe to send again because the refused request was not processed.
	if nonce := resp.Header.Get("DPoP-Nonce"); c.key != nil && nonce != "" && resp.StatusCode == http.StatusUnauthorized &&
		strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		resp.Body.Close()
		if resp, err = c.send(ctx, k, u, body, nonce); err != nil {
			return err
		}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return transportError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp, raw)
	}
	if k.out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, k.out); err != nil {
		return &Error{Status: http.StatusBadGateway, Title: "Bad Gateway", Err: fmt.Errorf("decoding %s %s: %w", k.method, k.path, err)}
	}
	return nil
}

// send makes one attempt of call k at URL u.
func (c *Caller) send(ctx context.Context, k call, u string, body []byte, nonce string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.token != "" && c.key != nil:
		proof, err := c.key.Proof(k.method, u, c.token, nonce)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "DPoP "+c.token)
		req.Header.Set("DPoP", proof)
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if k.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", k.idempotencyKey)
	}
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := c.c.http.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	return resp, nil
}

func transportError(err error) *Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Status: http.StatusGatewayTimeout, Title: "Gateway Timeout", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Title: "Bad Gateway", Err: err}
}

func answerError(resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	var p problem
	if json.Unmarshal(raw, &p) == nil {
		if p.Title != "" {
			e.Title = p.Title
		}
		e.Detail, e.Fields, e.Reason, e.PaymentID = p.Detail, p.Errors, p.Reason, p.PaymentID
		e.RetryAfter = time.Duration(p.RetryAfter) * time.Second
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// seg escapes one path segment, so an id can never reach another route (`../admin/all`).
func seg(s string) string { return url.PathEscape(s) }
