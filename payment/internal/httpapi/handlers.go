package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/problem"
)

// Handlers serve the routes of the table.
type Handlers struct {
	svc *payment.Service
	log *slog.Logger
}

// HeaderIdempotencyKey carries the caller's idempotency key.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderReplayed marks an answer replayed from an earlier request with the same key.
const HeaderReplayed = "Idempotent-Replayed"

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// idempotencyKey returns the request's Idempotency-Key, which charges and refunds require:
// without it a retried request could move money twice.
func idempotencyKey(c *fiber.Ctx) (string, error) {
	key := c.Get(HeaderIdempotencyKey)
	switch {
	case key == "":
		return "", problem.BadRequest("the Idempotency-Key header is required")
	case !idempotencyKeyPattern.MatchString(key):
		return "", problem.BadRequest("the Idempotency-Key header must be 1 to 128 characters of A-Z a-z 0-9 _ . : -")
	}
	return key, nil
}

// actor is the caller as the domain sees it. Every route it is used on requires a token, so
// a missing principal is a wiring bug, answered 401 rather than served anonymously.
func actor(c *fiber.Ctx) (payment.Actor, error) {
	p, ok := authn.PrincipalFrom(c)
	if !ok {
		return payment.Actor{}, authn.Unauthenticated("", "")
	}
	token, _ := authn.BearerToken(c)
	return payment.Actor{
		Subject: p.Subject, Username: p.Username, Admin: p.HasRole(authz.RoleAdmin),
		Credential: payment.Credential{Token: token},
		RequestID:  requestID(c),
	}, nil
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(problem.RequestIDKey).(string)
	return id
}

// chargeBody is the charge request. It has no amount, user or status: those come from the
// order and the token, and fields of those names in a body are ignored.
type chargeBody struct {
	OrderID string       `json:"orderId"`
	Card    payment.Card `json:"card"`
}

func (h *Handlers) charge(c *fiber.Ctx) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var body chargeBody
	if err := decodeJSON(c, &body, false); err != nil {
		return err
	}
	res, err := h.svc.Charge(c.UserContext(), a, payment.ChargeRequest{OrderID: body.OrderID, Card: body.Card, Key: key})
	if err != nil {
		return h.fail(c, err)
	}
	if res.Replayed {
		c.Set(HeaderReplayed, "true")
	}
	p := res.Payment
	switch p.Status {
	case payment.StatusDeclined:
		detail := "the card was declined"
		if p.Reason == payment.ReasonInsufficientFunds {
			detail = "the card has insufficient funds"
		}
		return writeOutcome(c, http.StatusPaymentRequired, detail, p)
	case payment.StatusFailed:
		return writeOutcome(c, http.StatusBadGateway,
			"the card processor failed; nothing was charged; try again with a new Idempotency-Key", p)
	}
	c.Location("/api/payments/" + p.ID)
	return c.Status(http.StatusCreated).JSON(toPaymentJSON(p))
}

// writeOutcome writes a declined or failed charge as problem+json naming the payment and
// the reason, so the client can show why and retry with another card.
func writeOutcome(c *fiber.Ctx, status int, detail string, p payment.Payment) error {
	return problem.Write(c, problem.New(status, detail).With("paymentId", p.ID).With("reason", p.Reason))
}

// refundBody is the refund request; without an amount, all that remains is refunded.
type refundBody struct {
	Amount *int64 `json:"amount"`
}

func (h *Handlers) refund(c *fiber.Ctx) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var body refundBody
	if err := decodeJSON(c, &body, true); err != nil {
		return err
	}
	res, err := h.svc.Refund(c.UserContext(), a, payment.RefundRequest{PaymentID: c.Params("id"), Amount: body.Amount, Key: key})
	if err != nil {
		return h.fail(c, err)
	}
	if res.Replayed {
		c.Set(HeaderReplayed, "true")
	}
	return c.Status(http.StatusCreated).JSON(toRefundJSON(res.Refund))
}

const paymentLocal = "payment.payment"

// ownsPayment is the Owner of GET /api/payments/:id. It keeps the payment it loaded for the
// handler, so the payment is read once.
func (h *Handlers) ownsPayment(c *fiber.Ctx) (string, error) {
	p, err := h.svc.Payment(c.UserContext(), c.Params("id"))
	if err != nil {
		return "", h.fail(c, err)
	}
	c.Locals(paymentLocal, p)
	return p.UserID, nil
}

func (h *Handlers) get(c *fiber.Ctx) error {
	p, ok := c.Locals(paymentLocal).(payment.Payment)
	if !ok {
		return errors.New("httpapi: the payment was not loaded by the route's policy")
	}
	return c.JSON(toPaymentJSON(p))
}

func (h *Handlers) listMine(c *fiber.Ctx) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	page, fields := pageOf(c)
	if len(fields) > 0 {
		return problem.Invalid("invalid query parameters", fields...)
	}
	ps, err := h.svc.MyPayments(c.UserContext(), a, page)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(toPaymentsJSON(ps))
}

func (h *Handlers) listAll(c *fiber.Ctx) error {
	page, fields := pageOf(c)
	f := payment.Filter{Page: page, OrderID: c.Query("orderId"), Status: payment.Status(c.Query("status"))}
	if f.OrderID != "" && !payment.ValidID(f.OrderID) {
		fields = append(fields, problem.FieldError{Field: "orderId", Message: "must be an order id (UUID)"})
	}
	if f.Status != "" && !slices.Contains(payment.Statuses, f.Status) {
		fields = append(fields, problem.FieldError{Field: "status",
			Message: "must be one of processing, approved, declined, failed, partially_refunded, refunded"})
	}
	if len(fields) > 0 {
		return problem.Invalid("invalid query parameters", fields...)
	}
	ps, err := h.svc.AllPayments(c.UserContext(), f)
	if err != nil {
		return h.fail(c, err)
	}
	return c.JSON(toPaymentsJSON(ps))
}

// maxActorLength is the longest username the audit log stores.
const maxActorLength = 255

// audit lists the audit log, newest first, filtered by ?action= (one of
// payment.AuditActions) and ?actor= (a username, exactly), and paged.
func (h *Handlers) audit(c *fiber.Ctx) error {
	page, fields := pageOf(c)
	f := payment.AuditFilter{Action: c.Query("action"), Actor: c.Query("actor"), Page: page}
	if f.Action != "" && !slices.Contains(payment.AuditActions, f.Action) {
		fields = append(fields, problem.FieldError{Field: "action", Message: "must be one of " + strings.Join(payment.AuditActions, ", ")})
	}
	if len(f.Actor) > maxActorLength {
		fields = append(fields, problem.FieldError{Field: "actor", Message: "must be at most " + strconv.Itoa(maxActorLength) + " characters"})
	}
	if len(fields) > 0 {
		return problem.Invalid("invalid query parameters", fields...)
	}
	entries, err := h.svc.AuditLog(c.UserContext(), f)
	if err != nil {
		return h.fail(c, err)
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = auditJSON{ID: e.ID, At: e.At, Actor: actorJSON{Subject: e.ActorSubject, Username: e.ActorName},
			Action: e.Action, Resource: e.Resource, Detail: json.RawMessage(e.Detail), RequestID: e.RequestID}
	}
	return c.JSON(out)
}

// Lists are paged: an unbounded list is a slow query waiting to happen.
const (
	defaultLimit = 50
	maxLimit     = 200
	maxOffset    = 100_000
)

func pageOf(c *fiber.Ctx) (payment.Page, []problem.FieldError) {
	page := payment.Page{Limit: defaultLimit}
	var fields []problem.FieldError
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			fields = append(fields, problem.FieldError{Field: "limit", Message: "must be 1 to " + strconv.Itoa(maxLimit)})
		}
		page.Limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxOffset {
			fields = append(fields, problem.FieldError{Field: "offset", Message: "must be 0 to " + strconv.Itoa(maxOffset)})
		}
		page.Offset = n
	}
	return page, fields
}

// notFoundDetail is the detail of authz.AdminOrOwner's refusal. A payment that does not
// exist is answered with the same words, so a shopper probing ids cannot tell "not yours"
// from "not there", not even by the detail.
const notFoundDetail = "no such resource"

// fail turns a service error into what the ErrorHandler writes: a missing payment into the
// not-found answer above, other domain sentinels into themselves (field errors pass through
// to platform/problem, which answers them 422). A sentinel wrapped with details (an
// upstream's address, a status code) is logged here in full and answered bare, so the
// caller learns what went wrong but not how this service's network is laid out.
func (h *Handlers) fail(c *fiber.Ctx, err error) error {
	if errors.Is(err, payment.ErrNotFound) {
		return problem.NotFound(notFoundDetail)
	}
	for _, m := range Errors {
		if errors.Is(err, m.Err) {
			if err != m.Err {
				h.log.Warn("request failed", "request_id", requestID(c), "status", m.Status, "err", err)
			}
			return m.Err
		}
	}
	return err
}

// moneyJSON is Money on the wire.
type moneyJSON struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type paymentJSON struct {
	ID        string         `json:"id"`
	OrderID   string         `json:"orderId"`
	UserID    string         `json:"userId"`
	Amount    moneyJSON      `json:"amount"`
	Refunded  moneyJSON      `json:"refunded"`
	Status    payment.Status `json:"status"`
	Reason    payment.Reason `json:"reason,omitempty"`
	CardBrand payment.Brand  `json:"cardBrand"`
	CardLast4 string         `json:"cardLast4"`
	CreatedAt time.Time      `json:"createdAt"`
}

func toPaymentJSON(p payment.Payment) paymentJSON {
	return paymentJSON{
		ID: p.ID, OrderID: p.OrderID, UserID: p.UserID,
		Amount:   moneyJSON(p.Amount),
		Refunded: moneyJSON{Amount: p.Refunded, Currency: p.Amount.Currency},
		Status:   p.Status, Reason: p.Reason, CardBrand: p.CardBrand, CardLast4: p.CardLast4,
		CreatedAt: p.CreatedAt.UTC(),
	}
}

func toPaymentsJSON(ps []payment.Payment) []paymentJSON {
	out := make([]paymentJSON, len(ps))
	for i, p := range ps {
		out[i] = toPaymentJSON(p)
	}
	return out
}

type refundJSON struct {
	ID            string    `json:"id"`
	PaymentID     string    `json:"paymentId"`
	OrderID       string    `json:"orderId"`
	Amount        moneyJSON `json:"amount"`
	FullyRefunded bool      `json:"fullyRefunded"`
	CreatedAt     time.Time `json:"createdAt"`
}

func toRefundJSON(r payment.Refund) refundJSON {
	return refundJSON{ID: r.ID, PaymentID: r.PaymentID, OrderID: r.OrderID, Amount: moneyJSON(r.Amount),
		FullyRefunded: r.FullyRefunded, CreatedAt: r.CreatedAt.UTC()}
}

type actorJSON struct {
	Subject  string `json:"subject"`
	Username string `json:"username"`
}

type auditJSON struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Actor     actorJSON       `json:"actor"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	Detail    json.RawMessage `json:"detail"`
	RequestID string          `json:"requestId"`
}
