package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	ID string `json:"id"`
	// Number is the order's number in the shop: what people read out, see and search by.
	Number    int64       `json:"number"`
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

// Ref is how a page names the order: its number, or, from an order service too old to
// send one, the end of its id (the random part: a UUIDv7 begins with its timestamp, so
// orders of the same minute share their first digits).
func (o Order) Ref() string {
	if o.Number > 0 {
		return strconv.FormatInt(o.Number, 10)
	}
	return o.ID[max(len(o.ID)-8, 0):]
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

// AuditEntry is one line of a service's audit log, in the shape both services write.
type AuditEntry struct {
	At    time.Time `json:"at"`
	Actor struct {
		Subject string `json:"subject"`
		// Username is a person's username, or a service account's client.
		Username string `json:"username"`
	} `json:"actor"`
	Action string `json:"action"`
	// Resource is what the action was about: kind/id (product/..., order/..., payment/...).
	Resource string `json:"resource"`
	// Detail describes the change; its keys depend on the action (docs/api-contract.md).
	Detail    map[string]any `json:"detail"`
	RequestID string         `json:"requestId"`
	// Source is the service whose log holds the entry (AuditOrder or AuditPayment); the
	// client sets it.
	Source string `json:"-"`
}

// The services that keep an audit log.
const (
	AuditOrder   = "order"
	AuditPayment = "payment"
)

// AuditQuery selects a page of one service's audit log; zero fields do not filter.
type AuditQuery struct {
	Action string
	// Actor is a username, matched exactly.
	Actor  string
	Offset int
	Limit  int
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

// OrderFilter narrows the list of all orders; zero fields do not filter.
type OrderFilter struct {
	Status   string
	Customer string
	Number   int64
}

// AllOrders lists a page of all orders, newest first, optionally filtered (needs the
// admin:read scope).
func (c *Caller) AllOrders(ctx context.Context, f OrderFilter, offset, limit int) ([]Order, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Customer != "" {
		q.Set("customer", f.Customer)
	}
	if f.Number > 0 {
		q.Set("number", strconv.FormatInt(f.Number, 10))
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

// Audit returns a page of the audit log of service (AuditOrder or AuditPayment), newest
// first (needs the ADMIN role).
func (c *Caller) Audit(ctx context.Context, service string, q AuditQuery) ([]AuditEntry, error) {
	path := "/api/orders/admin/audit"
	if service == AuditPayment {
		path = "/api/payments/admin/audit"
	}
	v := url.Values{"offset": {strconv.Itoa(q.Offset)}, "limit": {strconv.Itoa(q.Limit)}}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	var out list[AuditEntry]
	if err := c.do(ctx, call{method: http.MethodGet, path: path, query: v, out: &out}); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Source = service
	}
	return out, nil
}
