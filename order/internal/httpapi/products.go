package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"

	"example.com/shop/platform/validation"
)

func (h *handlers) listProducts(c *fiber.Ctx) error {
	ps, err := h.store.Products(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]productJSON, len(ps))
	for i, p := range ps {
		out[i] = toProduct(p)
	}
	return c.JSON(out)
}

func (h *handlers) getProduct(c *fiber.Ctx) error {
	p, err := h.store.Product(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toProduct(p))
}

// productRequest is what an admin sends to create or change a product. The id and the
// timestamps are the server's and have no field here.
type productRequest struct {
	Name        *string    `json:"name"`
	Description *string    `json:"description"`
	Price       *moneyJSON `json:"price"`
	Stock       *int       `json:"stock"`
	Active      *bool      `json:"active"`
}

// input checks that the required fields are present and returns them normalised. Name,
// price and stock are required on create and change alike: PUT replaces them.
func (r productRequest) input() (order.ProductInput, error) {
	var missing []validation.FieldError
	for _, f := range []struct {
		name   string
		absent bool
	}{{"name", r.Name == nil}, {"price", r.Price == nil}, {"stock", r.Stock == nil}} {
		if f.absent {
			missing = append(missing, validation.FieldError{Field: f.name, Message: "is required"})
		}
	}
	if len(missing) > 0 {
		return order.ProductInput{}, validation.New(missing...)
	}
	in := order.ProductInput{
		Name:   *r.Name,
		Price:  order.Money{Amount: r.Price.Amount, Currency: r.Price.Currency},
		Stock:  *r.Stock,
		Active: r.Active,
	}
	if r.Description != nil {
		in.Description = *r.Description
	}
	return in, in.Normalize()
}

func (h *handlers) createProduct(c *fiber.Ctx) error {
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input()
	if err != nil {
		return err
	}
	var p order.Product
	err = h.store.Tx(c.UserContext(), func(tx *store.Store) error {
		if p, err = tx.CreateProduct(c.UserContext(), in); err != nil {
			return err
		}
		return tx.Audit(c.UserContext(), h.auditEntry(c, order.ActionProductCreate, p.ID, map[string]any{
			"name": p.Name, "price": toMoney(p.Price), "stock": p.Stock, "active": p.Active,
		}))
	})
	if err != nil {
		return err
	}
	c.Location("/api/public/products/" + p.ID)
	return c.Status(fiber.StatusCreated).JSON(toProduct(p))
}

func (h *handlers) updateProduct(c *fiber.Ctx) error {
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input()
	if err != nil {
		return err
	}
	var after order.Product
	err = h.store.Tx(c.UserContext(), func(tx *store.Store) error {
		var before order.Product
		if before, after, err = tx.UpdateProduct(c.UserContext(), c.Params("id"), in); err != nil {
			return err
		}
		return tx.Audit(c.UserContext(), h.auditEntry(c, order.ActionProductUpdate, after.ID, map[string]any{
			"name": after.Name, "changes": productChanges(before, after),
		}))
	})
	if err != nil {
		return err
	}
	return c.JSON(toProduct(after))
}

// productChanges lists the fields an update changed, from and to, for the audit log.
func productChanges(before, after order.Product) map[string]any {
	changes := map[string]any{}
	note := func(field string, from, to any, differ bool) {
		if differ {
			changes[field] = map[string]any{"from": from, "to": to}
		}
	}
	note("name", before.Name, after.Name, before.Name != after.Name)
	note("description", before.Description, after.Description, before.Description != after.Description)
	note("price", toMoney(before.Price), toMoney(after.Price), before.Price != after.Price)
	note("stock", before.Stock, after.Stock, before.Stock != after.Stock)
	note("active", before.Active, after.Active, before.Active != after.Active)
	return changes
}

func (h *handlers) retireProduct(c *fiber.Ctx) error {
	id := c.Params("id")
	err := h.store.Tx(c.UserContext(), func(tx *store.Store) error {
		// Read while still active, so the audit entry can name the product.
		p, _ := tx.Product(c.UserContext(), id)
		changed, err := tx.RetireProduct(c.UserContext(), id)
		if err != nil || !changed {
			return err // retiring a retired product is a no-op, not a new audit entry
		}
		return tx.Audit(c.UserContext(), h.auditEntry(c, order.ActionProductRetire, id, map[string]any{"name": p.Name}))
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// auditEntry describes an admin action by the caller of this request.
func (h *handlers) auditEntry(c *fiber.Ctx, action, target string, details map[string]any) order.AuditEntry {
	p := principal(c)
	name := p.Username
	if name == "" {
		// A service account's token carries no username (the realm gives service clients
		// no profile scope); the client is the name a reader recognises.
		name = p.ClientID
	}
	return order.AuditEntry{
		ActorSubject: p.Subject, ActorUsername: name, Action: action,
		TargetID: target, Details: details, RequestID: requestID(c),
	}
}
