package payment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Statuses of a payment at the payment service, as the reconciliation reads them.
const (
	StatusProcessing        = "processing"
	StatusApproved          = "approved"
	StatusDeclined          = "declined"
	StatusFailed            = "failed"
	StatusPartiallyRefunded = "partially_refunded"
	StatusRefunded          = "refunded"
)

// Paid reports whether a payment in status charged the order: approved, and still so when
// refunded since (a refund does not unpay an order, it refunds it).
func Paid(status string) bool {
	return status == StatusApproved || status == StatusPartiallyRefunded || status == StatusRefunded
}

// Lookup reads an order's payments from the payment service's internal listener, for the
// reconciliation. No user is behind these calls: the order service asks as itself, with
// its certificate (mutual TLS) and its own client-credentials token.
type Lookup struct {
	endpoint *url.URL
	http     *http.Client
}

// NewLookup returns a Lookup of the payment service's internal listener at baseURL (e.g.
// https://localhost:8443). client must authenticate the order service there, and the
// payment service to it: svcauth.NewClient gives one that presents the order service's
// certificate and client-credentials token, accepts no server but the payment service,
// and bounds each call with a timeout.
func NewLookup(baseURL string, client *http.Client) (*Lookup, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		// The internal listener speaks mutual TLS only; plain HTTP would also put the
		// service's token on the wire in clear.
		return nil, fmt.Errorf("payment: the internal URL %q must be an absolute https URL", baseURL)
	}
	c := *client
	// A redirect would carry the service's token somewhere this service did not choose.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Lookup{endpoint: u.JoinPath("/internal/payments"), http: &c}, nil
}

// PaymentsOf returns every payment of the order, newest first; none when the charge never
// reached the payment service. An error wraps ErrUnavailable, ErrTimeout or ErrUpstream,
// and never means "no payment".
func (l *Lookup) PaymentsOf(ctx context.Context, orderID string) ([]Payment, error) {
	u := *l.endpoint
	u.RawQuery = url.Values{"orderId": {orderID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxLookupAnswer))
	if err != nil {
		return nil, transportError(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: the payments of order %s answered %d: %s", ErrUpstream, orderID, resp.StatusCode, clip(string(raw), 200))
	}
	var ps []Payment
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("%w: unreadable payments of order %s: %v", ErrUpstream, orderID, err)
	}
	for _, p := range ps {
		// Deciding an order's fate on another order's payment would be the worst mistake
		// here; an answer that mixes orders is not used at all.
		if p.OrderID != orderID || p.ID == "" || strings.TrimSpace(p.Status) == "" {
			return nil, fmt.Errorf("%w: the payments of order %s include %+v", ErrUpstream, orderID, p)
		}
	}
	return ps, nil
}

// maxLookupAnswer bounds an order's list of payments: at most 200 of a few hundred bytes.
const maxLookupAnswer = 256 << 10
