package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/validation"
)

// decodeJSON reads an application/json body as exactly one JSON value into dst. Fields dst does not have
// are ignored: the request types have no field for anything the server decides, so an
// attempt to set one (userId, status, total, price of a line...) has nowhere to go.
// Unreadable bodies are 400 with a detail that names the field, never echoing its value.
func decodeJSON(c *fiber.Ctx, dst any) error {
	// Only JSON is read. A form or text/plain body is what a browser sends cross-site
	// without asking; refusing it costs a real client nothing.
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		return problem.New(fiber.StatusUnsupportedMediaType, "the request body must be application/json")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.BadRequest("the request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return problem.BadRequest(describeJSONError(err))
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return problem.BadRequest("the request body must hold exactly one JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the request body is truncated JSON"
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "the request body must be " + jsonKind(typ.Type)
		}
		return typ.Field + " must be " + jsonKind(typ.Type)
	}
	return "the request body could not be read as JSON"
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer (within range)"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

// Query parameters of lists.
const (
	defaultPageSize = 50
	maxOffset       = 100_000
)

// pageOf reads ?limit= (1..200, default 50) and ?offset= (0..100000).
func pageOf(c *fiber.Ctx) (store.Page, error) {
	var fields []validation.FieldError
	p := store.Page{Limit: defaultPageSize}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageSize {
			fields = append(fields, validation.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(store.MaxPageSize)})
		}
		p.Limit = n
	}
	if s := c.Query("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			fields = append(fields, validation.FieldError{Field: "offset", Message: "must be an integer from 0 to " + strconv.Itoa(maxOffset)})
		}
		p.Offset = n
	}
	if len(fields) > 0 {
		return p, validation.New(fields...)
	}
	return p, nil
}

// Answer shapes. They are separate from the domain types so that a change in the domain
// cannot silently change the API, and nothing internal (payment attempts, idempotency
// keys) is ever serialised by accident.

type moneyJSON struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func toMoney(m order.Money) moneyJSON { return moneyJSON{Amount: m.Amount, Currency: m.Currency} }

type productJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       moneyJSON `json:"price"`
	Stock       int       `json:"stock"`
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func toProduct(p order.Product) productJSON {
	return productJSON{
		ID: p.ID, Name: p.Name, Description: p.Description, Price: toMoney(p.Price),
		Stock: p.Stock, Active: p.Active, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
}

type itemJSON struct {
	ProductID string    `json:"productId"`
	Name      string    `json:"name"`
	UnitPrice moneyJSON `json:"unitPrice"`
	Quantity  int       `json:"quantity"`
	LineTotal moneyJSON `json:"lineTotal"`
}

type orderJSON struct {
	ID        string     `json:"id"`
	Number    int64      `json:"number"`
	UserID    string     `json:"userId"`
	Customer  string     `json:"customer"`
	Status    string     `json:"status"`
	Items     []itemJSON `json:"items"`
	Total     moneyJSON  `json:"total"`
	Refunded  moneyJSON  `json:"refunded"`
	PaymentID string     `json:"paymentId,omitempty"`
	// PaymentDueAt is when a pending order expires unless its payment has started.
	PaymentDueAt *time.Time `json:"paymentDueAt,omitempty"`
	// CancelReason says why a cancelled order was cancelled: requested or expired.
	CancelReason string    `json:"cancelReason,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

func toOrder(o order.Order) orderJSON {
	out := orderJSON{
		ID: o.ID, Number: o.Number, UserID: o.UserID, Customer: o.Customer, Status: string(o.Status),
		Items: make([]itemJSON, len(o.Items)), Total: toMoney(o.Total), Refunded: toMoney(o.Refunded),
		PaymentID: o.PaymentID, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
	}
	if o.Status == order.StatusPending && !o.PaymentDueAt.IsZero() {
		due := o.PaymentDueAt.UTC()
		out.PaymentDueAt = &due
	}
	if o.Status == order.StatusCancelled {
		out.CancelReason = string(o.CancelReason)
	}
	for i, it := range o.Items {
		out.Items[i] = itemJSON{
			ProductID: it.ProductID, Name: it.Name, UnitPrice: toMoney(it.UnitPrice),
			Quantity: it.Quantity, LineTotal: toMoney(it.LineTotal),
		}
	}
	return out
}

func toOrders(list []order.Order) []orderJSON {
	out := make([]orderJSON, len(list))
	for i, o := range list {
		out[i] = toOrder(o)
	}
	return out
}

// auditJSON has the shape of the payment service's audit entries, so one admin page can
// show both logs.
type auditJSON struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	Actor     actorJSON      `json:"actor"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	Detail    map[string]any `json:"detail"`
	RequestID string         `json:"requestId"`
}

type actorJSON struct {
	Subject  string `json:"subject"`
	Username string `json:"username"`
}
