// Package payment is the order service's client of the payment service: it charges an order
// on behalf of the shopper whose request it is serving (Client, on the payment service's
// public API), and it reads an order's payments as the order service itself, for the
// reconciliation (Lookup, on the internal listener, see lookup.go).
//
// The charge is made as the shopper: their access token is exchanged for one addressed to
// the payment service alone (OAuth 2.0 Token Exchange, see platform/svcauth.Exchanger), or,
// when no exchange is configured, propagated unchanged (JWT propagation). Either way the
// payment service applies its rules to the real caller and reads the order, and so its
// amount, from the order service as that caller; this client never sends an amount. Each
// charge carries an Idempotency-Key chosen by the caller, so a charge retried after a
// timeout is replayed by the payment service rather than made twice. Every answer is
// sorted into one of a few outcomes the checkout can act on: approved, declined, refused
// (4xx), failed at the processor, or unavailable/timed out/failed upstream; only
// "approved" may mark an order paid, and Definitive tells which outcomes end a charge
// attempt for good.
package payment

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
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"example.com/shop/platform/svcauth"
	"example.com/shop/platform/telemetry"
	"example.com/shop/platform/validation"
)

// Outcomes of a charge other than approval. The order stays payable after every one.
var (
	// ErrDeclined: the payment service declined the card (402). *DeclinedError has the
	// reason. Definitive: the next attempt needs a new Idempotency-Key.
	ErrDeclined = errors.New("the payment was declined")
	// ErrRefused: the payment service refused the request as it stands (409 or 422, e.g.
	// an invalid card); *RefusedError carries its status and detail.
	ErrRefused = errors.New("the payment service refused the charge")
	// ErrFailed: the card processor failed and the payment service recorded the attempt
	// as failed (502 with a payment id): nothing was charged, and the next attempt needs a
	// new Idempotency-Key.
	ErrFailed = errors.New("the card processor failed; nothing was charged, try again")
	// ErrUnavailable: the payment service could not be reached or is overloaded (503).
	ErrUnavailable = errors.New("the payment service is unavailable; nothing was charged, try again in a moment")
	// ErrTimeout: no answer within the configured time (504). The charge may or may not
	// have happened: a retry with the same Idempotency-Key finds out without charging twice.
	ErrTimeout = errors.New("the payment service did not answer in time; try again: the same payment attempt is reused, so it cannot be charged twice")
	// ErrSessionEnded: Keycloak would not exchange the shopper's token for the payment
	// service (their session has ended); nothing was sent, nothing charged (401).
	ErrSessionEnded = errors.New("your session has ended; log in again to pay")
	// ErrUpstream: the payment service answered something unusable: a 5xx, or an answer
	// this client does not understand (502).
	ErrUpstream = errors.New("the payment service failed; nothing was marked paid, try again")
)

// DeclinedError is a definitive decline by the payment service.
type DeclinedError struct {
	// PaymentID is the declined payment's id at the payment service, if it gave one.
	PaymentID string
	// Reason is the payment service's short reason (e.g. card_declined, insufficient_funds).
	Reason string
}

func (e *DeclinedError) Error() string {
	if e.Reason == "" {
		return ErrDeclined.Error()
	}
	return ErrDeclined.Error() + " (" + e.Reason + ")"
}

// Unwrap makes errors.Is(err, ErrDeclined) true.
func (e *DeclinedError) Unwrap() error { return ErrDeclined }

// RefusedError is a 409 or 422 from the payment service, passed on to the shopper.
type RefusedError struct {
	Status int
	Detail string
	// Fields are the payment service's field errors (e.g. card.number) of a 422 that
	// refused the request's values; such a refusal charged nothing.
	Fields []validation.FieldError
}

func (e *RefusedError) Error() string { return ErrRefused.Error() + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Definitive reports whether err ends a charge attempt for good without a charge: a
// decline, a processor failure the payment service recorded, or a 422 naming invalid
// fields. The payment service replays an attempt's first answer for its Idempotency-Key,
// so only after such an answer may the next attempt use a new key. After anything else (a
// timeout, a 5xx without a recorded payment, a 409 while a charge is in flight) the charge
// may have happened, and the retry must send the same key to find out without paying twice.
func Definitive(err error) bool {
	var refused *RefusedError
	return errors.Is(err, ErrDeclined) || errors.Is(err, ErrFailed) ||
		(errors.As(err, &refused) && refused.Status == http.StatusUnprocessableEntity && len(refused.Fields) > 0)
}

// Card is the card a shopper pays with. It passes through this service on its way to the
// payment service and is never stored or logged here: its String and LogValue show only
// the last four digits.
type Card struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"expMonth"`
	ExpYear  int    `json:"expYear"`
	CVC      string `json:"cvc"`
	Holder   string `json:"holder,omitempty"`
}

// String masks the card, so an accidental %v never prints it.
func (c Card) String() string { return "card ending " + c.last4() }

// GoString masks the card for %#v too.
func (c Card) GoString() string { return c.String() }

// LogValue masks the card in structured logs.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Card) last4() string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, c.Number)
	if len(digits) < 4 {
		return "????"
	}
	return digits[len(digits)-4:]
}

// Money is an amount in minor units of a currency, as the payment service sends it.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Payment is the part of the payment service's answer the order service uses.
type Payment struct {
	ID      string `json:"id"`
	OrderID string `json:"orderId"`
	Amount  Money  `json:"amount"`
	Status  string `json:"status"`
	// Replayed is set when the answer replays an earlier request's under the same
	// Idempotency-Key (Idempotent-Replayed: true): that request made the charge, not this one.
	Replayed bool `json:"-"`
}

// headerReplayed marks the payment service's replayed answers.
const headerReplayed = "Idempotent-Replayed"

// Charge is one charge request.
type Charge struct {
	OrderID string
	Card    Card
	// Authorization is the shopper's Authorization header, sent on unchanged.
	Authorization string
	// IdempotencyKey names the charge attempt (see order.Order.PaymentKey).
	IdempotencyKey string
	// RequestID ties the payment service's logs to the shopper's request.
	RequestID string
}

// Exchange trades the shopper's access token for one addressed to the payment service
// (svcauth.Exchanger.Exchange).
type Exchange func(ctx context.Context, token string) (string, error)

// Client calls the payment service.
type Client struct {
	endpoint string
	timeout  time.Duration
	http     *http.Client
	exchange Exchange
}

// New returns a client of the payment service at baseURL (e.g. http://localhost:8082) whose
// calls give up after timeout. exchange narrows the shopper's token for each charge; nil
// sends it unchanged.
func New(baseURL string, timeout time.Duration, exchange Exchange) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payment: %q is not an http(s) URL", baseURL)
	}
	if timeout <= 0 {
		return nil, errors.New("payment: the timeout must be positive")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	return &Client{
		endpoint: strings.TrimSuffix(u.String(), "/") + "/api/payments",
		timeout:  timeout,
		exchange: exchange,
		http: &http.Client{
			Transport: telemetry.Transport(transport),
			// A redirect would send the shopper's token somewhere this service was not
			// configured to trust; the payment service has no reason to redirect.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Timeout is how long a charge may take, token exchange included: a checkout that started
// longer ago than that has stopped waiting for its answer.
func (c *Client) Timeout() time.Duration { return c.timeout }

// chargeBody is all the payment service is sent: which order, and the card. No amount.
type chargeBody struct {
	OrderID string `json:"orderId"`
	Card    Card   `json:"card"`
}

// problemBody is the payment service's problem+json, with its extensions.
type problemBody struct {
	Detail    string                  `json:"detail"`
	PaymentID string                  `json:"paymentId"`
	Reason    string                  `json:"reason"`
	Errors    []validation.FieldError `json:"errors"`
}

// authorization is the Authorization header the charge is sent with: the shopper's,
// exchanged for the payment service when an Exchange is configured.
func (c *Client) authorization(ctx context.Context, shoppers string) (string, error) {
	if c.exchange == nil {
		return shoppers, nil
	}
	scheme, token, ok := strings.Cut(shoppers, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", fmt.Errorf("%w: no bearer token to exchange", ErrSessionEnded)
	}
	narrowed, err := c.exchange(ctx, token)
	switch {
	case errors.Is(err, svcauth.ErrExchangeRefused):
		return "", fmt.Errorf("%w: %v", ErrSessionEnded, err)
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return "Bearer " + narrowed, nil
}

// maxAnswer bounds how much of an answer is read: a payment is a few hundred bytes.
const maxAnswer = 64 << 10

// Charge asks the payment service to charge ch.OrderID. It returns the payment only when the
// payment service approved it; every other outcome is one of the errors above.
func (c *Client) Charge(ctx context.Context, ch Charge) (Payment, error) {
	body, err := json.Marshal(chargeBody{OrderID: ch.OrderID, Card: ch.Card})
	if err != nil {
		return Payment{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	authorization, err := c.authorization(ctx, ch.Authorization)
	if err != nil {
		return Payment{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return Payment{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Idempotency-Key", ch.IdempotencyKey)
	if ch.RequestID != "" {
		req.Header.Set("X-Request-Id", ch.RequestID)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return Payment{}, transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Payment{}, transportError(err)
	}

	switch s := resp.StatusCode; {
	case s == http.StatusOK || s == http.StatusCreated:
		var p Payment
		if err := json.Unmarshal(raw, &p); err != nil || p.ID == "" {
			return Payment{}, fmt.Errorf("%w: unreadable payment (status %d)", ErrUpstream, s)
		}
		if p.Status != "approved" || p.OrderID != ch.OrderID {
			return Payment{}, fmt.Errorf("%w: answered %d with payment %s of order %s in status %q",
				ErrUpstream, s, p.ID, p.OrderID, p.Status)
		}
		p.Replayed = resp.Header.Get(headerReplayed) == "true"
		return p, nil
	case s == http.StatusPaymentRequired:
		var pb problemBody
		_ = json.Unmarshal(raw, &pb) // a decline without a readable body is still a decline
		return Payment{}, &DeclinedError{PaymentID: pb.PaymentID, Reason: clip(pb.Reason, 64)}
	case s == http.StatusConflict || s == http.StatusUnprocessableEntity:
		var pb problemBody
		_ = json.Unmarshal(raw, &pb)
		detail := clip(pb.Detail, 300)
		if detail == "" {
			detail = http.StatusText(s)
		}
		refused := &RefusedError{Status: s, Detail: detail}
		for _, f := range pb.Errors[:min(len(pb.Errors), 20)] {
			refused.Fields = append(refused.Fields, validation.FieldError{Field: clip(f.Field, 64), Message: clip(f.Message, 200)})
		}
		return Payment{}, refused
	case s == http.StatusBadGateway:
		var pb problemBody
		if json.Unmarshal(raw, &pb) == nil && pb.PaymentID != "" {
			// The payment service reached the processor, which failed; it recorded the attempt.
			return Payment{}, fmt.Errorf("%w (payment %s)", ErrFailed, pb.PaymentID)
		}
		return Payment{}, fmt.Errorf("%w (status %d)", ErrUpstream, s)
	case s == http.StatusServiceUnavailable || s == http.StatusTooManyRequests:
		return Payment{}, fmt.Errorf("%w (status %d)", ErrUnavailable, s)
	case s == http.StatusGatewayTimeout:
		return Payment{}, fmt.Errorf("%w (status %d)", ErrTimeout, s)
	default:
		// 5xx, or a 401/403/404 that means the services disagree about tokens or orders:
		// nothing the shopper can fix, and never a reason to mark the order paid.
		return Payment{}, fmt.Errorf("%w (status %d)", ErrUpstream, s)
	}
}

// transportError sorts a failed exchange: out of time is a timeout (the charge may have
// happened), anything else means the payment service was not reached.
func transportError(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// clip keeps the first n bytes of an upstream text that is shown to the shopper, cut at a
// rune boundary.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
