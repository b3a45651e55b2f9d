package httpapi

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/authz"
	"example.com/shop/platform/validation"
)

// Idempotency-Key header, as the contract defines it.
const (
	headerIdempotencyKey = "Idempotency-Key"
	// headerReplayed marks an answer replayed for a repeated Idempotency-Key.
	headerReplayed = "Idempotent-Replayed"
)

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// createOrderRequest is all a shopper chooses: products and quantities. The owner, the
// prices, the total and the status have no field here; they are the server's.
type createOrderRequest struct {
	Items []struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	} `json:"items"`
}

func (h *handlers) createOrder(c *fiber.Ctx) error {
	key := c.Get(headerIdempotencyKey)
	if key != "" && !idempotencyKeyPattern.MatchString(key) {
		return validation.New(validation.FieldError{
			Field: headerIdempotencyKey, Message: "must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
		})
	}
	var req createOrderRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	lines := make([]order.Line, len(req.Items))
	for i, it := range req.Items {
		lines[i] = order.Line{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	if err := order.ValidateLines(lines, h.rules); err != nil {
		return err
	}
	p := principal(c)
	customer := p.Username
	if customer == "" {
		customer = p.Subject
	}
	o, replayed, err := h.store.CreateOrder(c.UserContext(), store.NewOrder{
		UserID: p.Subject, Customer: customer, Lines: lines, IdempotencyKey: key,
		PaymentHold: h.rules.PaymentHold, MaxUnpaid: h.rules.MaxUnpaid,
	})
	if err != nil {
		return err
	}
	if replayed {
		// The first answer again, status included, marked as a replay.
		c.Set(headerReplayed, "true")
	}
	c.Location("/api/orders/" + o.ID)
	return c.Status(fiber.StatusCreated).JSON(toOrder(o))
}

func (h *handlers) listMyOrders(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	list, err := h.store.OrdersOf(c.UserContext(), principal(c).Subject, page)
	if err != nil {
		return err
	}
	return c.JSON(toOrders(list))
}

func (h *handlers) getOrder(c *fiber.Ctx) error {
	return c.JSON(toOrder(loadedOrder(c)))
}

func (h *handlers) cancelOrder(c *fiber.Ctx) error {
	o, err := h.store.CancelOrder(c.UserContext(), loadedOrder(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(toOrder(o))
}

// deleteOrder soft-deletes an order. Its owner may delete it while pending or cancelled;
// an admin may delete any order, and that is written to the audit log in the same
// transaction.
func (h *handlers) deleteOrder(c *fiber.Ctx) error {
	byAdmin := principal(c).HasRole(authz.RoleAdmin)
	err := h.store.Tx(c.UserContext(), func(tx *store.Store) error {
		o, err := tx.DeleteOrder(c.UserContext(), loadedOrder(c).ID, byAdmin)
		if err != nil || !byAdmin {
			return err
		}
		return tx.Audit(c.UserContext(), h.auditEntry(c, order.ActionOrderDelete, o.ID, map[string]any{
			"number": o.Number, "ownerSubject": o.UserID, "customer": o.Customer, "status": string(o.Status), "total": toMoney(o.Total),
		}))
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *handlers) listAllOrders(c *fiber.Ctx) error {
	page, err := pageOf(c)
	if err != nil {
		return err
	}
	var f store.Filter
	if s := c.Query("status"); s != "" {
		st, ok := order.ParseStatus(s)
		if !ok {
			return validation.New(validation.FieldError{Field: "status", Message: "must be one of pending, paid, cancelled, refunded"})
		}
		f.Status = st
	}
	f.Customer = c.Query("customer")
	if s := c.Query("number"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return validation.New(validation.FieldError{Field: "number", Message: "must be an order number, a whole number from 1"})
		}
		f.Number = n
	}
	list, err := h.store.AllOrders(c.UserContext(), f, page)
	if err != nil {
		return err
	}
	return c.JSON(toOrders(list))
}

// maxActorLength is the longest username the audit log stores.
const maxActorLength = 255

// listAudit lists the audit log, newest first, filtered by ?action= (one of
// order.Actions) and ?actor= (a username or service client, exactly), and paged. Every
// bad value is named in one 422.
func (h *handlers) listAudit(c *fiber.Ctx) error {
	var fe validation.Fields
	page, err := pageOf(c)
	if pe, ok := errors.AsType[*validation.Error](err); ok {
		fe = pe.Fields
	} else if err != nil {
		return err
	}
	f := store.AuditFilter{Action: c.Query("action"), Actor: c.Query("actor")}
	if f.Action != "" && !slices.Contains(order.Actions, f.Action) {
		fe.Add("action", "must be one of "+strings.Join(order.Actions, ", "))
	}
	if len(f.Actor) > maxActorLength {
		fe.Add("actor", "must be at most "+strconv.Itoa(maxActorLength)+" characters")
	}
	if err := fe.Err(); err != nil {
		return err
	}
	entries, err := h.store.AuditLog(c.UserContext(), f, page)
	if err != nil {
		return err
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = auditJSON{
			ID: e.ID, At: e.At, Actor: actorJSON{Subject: e.ActorSubject, Username: e.ActorUsername},
			Action: e.Action, Resource: e.Resource(), Detail: e.Details, RequestID: e.RequestID,
		}
	}
	return c.JSON(out)
}
