package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Money is an amount in minor units (cents) and its ISO 4217 currency; never a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Product is one catalog entry.
type Product struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       Money     `json:"price"`
	Stock       int       `json:"stock"`
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// ProductInput creates or changes a product.
type ProductInput struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       Money  `json:"price"`
	Stock       int    `json:"stock"`
}

// Order statuses.
const (
	StatusPending   = "pending"
	StatusPaid      = "paid"
	StatusCancelled = "cancelled"
	StatusRefunded  = "refunded"
)

// Order is a placed order.
type Order struct {
	ID        string      `json:"id"`
	UserID    string      `json:"userId"`
	Customer  string      `json:"customer"`
	Status    string      `json:"status"`
	Items     []OrderItem `json:"items"`
	Total     Money       `json:"total"`
	Refunded  Money       `json:"refunded"`
	PaymentID string      `json:"paymentId,omitempty"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
	// PaymentDueAt is when a pending order expires unless paid.
	PaymentDueAt *time.Time `json:"paymentDueAt,omitempty"`
	// CancelReason says why a cancelled order was cancelled: CancelExpired when its
	// shopper did not pay in time.
	CancelReason string `json:"cancelReason,omitempty"`
}

// CancelExpired is the CancelReason of an order that was not paid in time.
const CancelExpired = "expired"

// Expired reports whether the order was cancelled because it was not paid in time.
func (o Order) Expired() bool { return o.Status == StatusCancelled && o.CancelReason == CancelExpired }

// State is the status a shopper sees: "expired" for an expired order, else its status.
func (o Order) State() string {
	if o.Expired() {
		return CancelExpired
	}
	return o.Status
}

// OrderItem is one line of an order, priced by the order service.
type OrderItem struct {
	ProductID string `json:"productId"`
	Name      string `json:"name"`
	UnitPrice Money  `json:"unitPrice"`
	Quantity  int    `json:"quantity"`
	LineTotal Money  `json:"lineTotal"`
}

// NewOrderItem is one line of an order to create.
type NewOrderItem struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// Payment is a charge of an order.
type Payment struct {
	ID        string    `json:"id"`
	OrderID   string    `json:"orderId"`
	UserID    string    `json:"userId"`
	Amount    Money     `json:"amount"`
	Refunded  Money     `json:"refunded"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	CardBrand string    `json:"cardBrand"`
	CardLast4 string    `json:"cardLast4"`
	CreatedAt time.Time `json:"createdAt"`
}

// Card is a payment card as the shopper typed it. It passes through the webapp to the API
// and is never stored or logged here.
type Card struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"expMonth"`
	ExpYear  int    `json:"expYear"`
	CVC      string `json:"cvc"`
	Holder   string `json:"holder"`
}

// AuditEntry is one line of a service's audit log.
type AuditEntry struct {
	Time time.Time
	// Source is the service that wrote it: "order" or "payment".
	Source string
	Actor  string
	Action string
	Target string
	Detail string
}

// list decodes a JSON array, or an object holding the array under "items": the contract
// does not fix a list envelope, so both are read.
type list[T any] []T

func (l *list[T]) UnmarshalJSON(b []byte) error {
	var items []T
	if err := json.Unmarshal(b, &items); err == nil {
		*l = items
		return nil
	}
	var env struct {
		Items []T `json:"items"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return err
	}
	*l = env.Items
	return nil
}

// Products lists the active catalog (public).
func (c *Caller) Products(ctx context.Context) ([]Product, error) {
	var out list[Product]
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/public/products", out: &out})
	return out, err
}

// Product returns one product (public).
func (c *Caller) Product(ctx context.Context, id string) (*Product, error) {
	var out Product
	if err := c.do(ctx, call{method: http.MethodGet, path: "/api/public/products/" + seg(id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateOrder places an order. The same idempotency key returns the first order again, so
// a form submitted twice creates one order.
func (c *Caller) CreateOrder(ctx context.Context, items []NewOrderItem, idempotencyKey string) (*Order, error) {
	var out Order
	body := struct {
		Items []NewOrderItem `json:"items"`
	}{items}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/orders", body: body, idempotencyKey: idempotencyKey, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// MyOrders lists the caller's orders.
func (c *Caller) MyOrders(ctx context.Context) ([]Order, error) {
	var out list[Order]
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/orders", out: &out})
	return out, err
}

// Order returns one order (the caller's own, or any for an admin).
func (c *Caller) Order(ctx context.Context, id string) (*Order, error) {
	var out Order
	if err := c.do(ctx, call{method: http.MethodGet, path: "/api/orders/" + seg(id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelOrder cancels a pending order.
func (c *Caller) CancelOrder(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/api/orders/" + seg(id) + "/cancel"})
}

// PayOrder charges a pending order with card. A declined card is an *Error with status 402
// and the reason.
func (c *Caller) PayOrder(ctx context.Context, id string, card Card, idempotencyKey string) error {
	body := struct {
		Card Card `json:"card"`
	}{card}
	return c.do(ctx, call{method: http.MethodPost, path: "/api/orders/" + seg(id) + "/pay", body: body, idempotencyKey: idempotencyKey})
}

// DeleteOrder deletes an order.
func (c *Caller) DeleteOrder(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/api/orders/" + seg(id)})
}

// AllOrders lists a page of all orders, newest first, optionally filtered (needs the
// admin:read scope).
func (c *Caller) AllOrders(ctx context.Context, status, customer string, offset, limit int) ([]Order, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if status != "" {
		q.Set("status", status)
	}
	if customer != "" {
		q.Set("customer", customer)
	}
	var out list[Order]
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/orders/admin/all", query: q, out: &out})
	return out, err
}

// Payment returns one payment.
func (c *Caller) Payment(ctx context.Context, id string) (*Payment, error) {
	var out Payment
	if err := c.do(ctx, call{method: http.MethodGet, path: "/api/payments/" + seg(id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Refund refunds amount minor units of a payment, or all that remains when amount is nil.
func (c *Caller) Refund(ctx context.Context, paymentID string, amount *int64, idempotencyKey string) error {
	body := struct {
		Amount *int64 `json:"amount,omitempty"`
	}{amount}
	return c.do(ctx, call{method: http.MethodPost, path: "/api/payments/" + seg(paymentID) + "/refunds", body: body, idempotencyKey: idempotencyKey})
}

// CreateProduct adds a product to the catalog.
func (c *Caller) CreateProduct(ctx context.Context, in ProductInput) (*Product, error) {
	var out Product
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/admin/products", body: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateProduct changes a product.
func (c *Caller) UpdateProduct(ctx context.Context, id string, in ProductInput) error {
	return c.do(ctx, call{method: http.MethodPut, path: "/api/admin/products/" + seg(id), body: in})
}

// RetireProduct hides a product from the catalog.
func (c *Caller) RetireProduct(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/api/admin/products/" + seg(id)})
}

// AuditPage is how many of the newest entries Audit asks each service for (the order
// service allows at most 100 per page).
const AuditPage = 100

// Audit returns the newest audit entries of the order and payment services merged, newest
// first.
func (c *Caller) Audit(ctx context.Context) ([]AuditEntry, error) {
	var all []AuditEntry
	for _, src := range []struct{ name, path string }{
		{"order", "/api/orders/admin/audit"},
		{"payment", "/api/payments/admin/audit"},
	} {
		var raw list[map[string]any]
		q := url.Values{"limit": {strconv.Itoa(AuditPage)}}
		if err := c.do(ctx, call{method: http.MethodGet, path: src.path, query: q, out: &raw}); err != nil {
			return nil, err
		}
		for _, m := range raw {
			all = append(all, auditEntry(src.name, m))
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.After(all[j].Time) })
	return all, nil
}

// auditEntry reads an audit record. The contract names the audit endpoints but not their
// records, and the two services differ (the order service writes actorUsername, targetId
// and details; the payment service an actor object, resource and detail), so the usual
// names are tried in turn and anything left over is shown as detail.
func auditEntry(source string, m map[string]any) AuditEntry {
	take := func(keys ...string) string {
		for _, k := range keys {
			v, ok := m[k]
			if !ok || v == nil {
				continue
			}
			delete(m, k)
			switch v := v.(type) {
			case string:
				return v
			case map[string]any:
				if name, ok := v["username"].(string); ok {
					return name
				}
				return pairs(v)
			default:
				b, _ := json.Marshal(v)
				return string(b)
			}
		}
		return ""
	}
	e := AuditEntry{Source: source}
	if t, err := time.Parse(time.RFC3339Nano, take("at", "time", "timestamp", "createdAt")); err == nil {
		e.Time = t
	}
	e.Actor = take("actorUsername", "actor", "username", "actorSubject", "userId", "subject")
	e.Action = take("action", "event", "type")
	e.Target = take("targetId", "resource", "target", "orderId", "paymentId", "productId")
	e.Detail = take("details", "detail", "message")
	for _, k := range []string{"id", "requestId", "actorSubject"} {
		delete(m, k)
	}
	if extra := pairs(m); extra != "" {
		e.Detail = strings.TrimSpace(e.Detail + " " + extra)
	}
	return e
}

// pairs renders a JSON object as sorted key=value pairs.
func pairs(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			b, _ := json.Marshal(m[k])
			v = string(b)
		}
		out = append(out, k+"="+v)
	}
	return strings.Join(out, " ")
}
