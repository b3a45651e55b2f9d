package web

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
)

// The admin order list is paged; the order service allows at most 100 per page.
const (
	adminPageSize = 50
	maxAdminPage  = 1000
)

var orderStatuses = []string{gateway.StatusPending, gateway.StatusPaid, gateway.StatusCancelled, gateway.StatusRefunded}

func (h *handlers) adminOrders(c *fiber.Ctx) error {
	status := c.Query("status")
	if !slices.Contains(orderStatuses, status) {
		status = ""
	}
	customer := strings.TrimSpace(c.Query("customer"))
	if len(customer) > 100 {
		customer = customer[:100]
	}
	typed := strings.TrimSpace(c.Query("number"))
	if len(typed) > 40 {
		typed = typed[:40]
	}
	number, numberOK := parseOrderNumber(typed)
	pageNo, err := strconv.Atoi(c.Query("page", "0"))
	if err != nil || pageNo < 0 || pageNo > maxAdminPage {
		pageNo = 0
	}
	data := map[string]any{"Statuses": orderStatuses, "Status": status, "Customer": customer, "Number": typed}
	if !numberOK {
		// Nothing is asked of the order service for a number no order can have.
		data["NumberError"] = "Enter an order number such as 10042."
		return h.render(c, page{name: "admin/orders", title: "Admin: orders", nav: "admin", sub: "orders", status: fiber.StatusUnprocessableEntity, data: data})
	}
	orders, err := caller(c).AllOrders(ctx(c), gateway.OrderFilter{Status: status, Customer: customer, Number: number}, pageNo*adminPageSize, adminPageSize)
	if err != nil {
		return h.apiError(c, err)
	}
	link := func(p int) string {
		q := url.Values{"page": {strconv.Itoa(p)}}
		if status != "" {
			q.Set("status", status)
		}
		if customer != "" {
			q.Set("customer", customer)
		}
		if number > 0 {
			q.Set("number", strconv.FormatInt(number, 10))
		}
		return "/admin?" + q.Encode()
	}
	data["Orders"] = orders
	if pageNo > 0 {
		data["Prev"] = link(pageNo - 1)
	}
	if len(orders) == adminPageSize && pageNo < maxAdminPage {
		data["Next"] = link(pageNo + 1)
	}
	return h.render(c, page{name: "admin/orders", title: "Admin: orders", nav: "admin", sub: "orders", data: data})
}

// parseOrderNumber reads an order number as people write it: "10042", "#10042" or
// "Order 10042". Empty is no filter (0, true); anything else is not a number (false).
func parseOrderNumber(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= len("order") && strings.EqualFold(s[:len("order")], "order") {
		s = strings.TrimSpace(s[len("order"):])
	}
	s = strings.TrimPrefix(s, "#")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || s[0] == '+' {
		return 0, false
	}
	return n, true
}

func (h *handlers) adminOrder(c *fiber.Ctx) error {
	v, err := h.loadOrder(c)
	if err != nil {
		return err
	}
	if p := v.Payment; p != nil && (p.Status == "approved" || p.Status == "partially_refunded") {
		v.CanRefund = true
		v.Remaining = gateway.Money{Amount: p.Amount.Amount - p.Refunded.Amount, Currency: p.Amount.Currency}
		v.Key = newKey()
	}
	return h.render(c, page{name: "admin/order", title: "Admin: order", nav: "admin", sub: "orders", data: v})
}

// adminRefund refunds the order's payment, in full when no amount is given. The payment is
// the one the order names, never one taken from the form.
func (h *handlers) adminRefund(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	st := session.From(c)
	back := "/admin/orders/" + id
	api := caller(c)
	key := c.FormValue("idempotencyKey")
	if !keyPattern.MatchString(key) {
		st.AddFlash(session.FlashAlert, "The refund form was incomplete; please try again.")
		return c.Redirect(back, fiber.StatusSeeOther)
	}
	o, err := api.Order(ctx(c), id)
	if err != nil {
		return h.apiError(c, err)
	}
	if o.PaymentID == "" || !validID(o.PaymentID) {
		st.AddFlash(session.FlashAlert, "This order has no payment to refund.")
		return c.Redirect(back, fiber.StatusSeeOther)
	}
	var amount *int64
	if raw := strings.TrimSpace(c.FormValue("amount")); raw != "" {
		n, err := parseAmount(raw, o.Total.Currency)
		if err != nil || n <= 0 {
			st.AddFlash(session.FlashAlert, "Refund amount: enter an amount like 12.50, or leave it empty to refund everything.")
			return c.Redirect(back, fiber.StatusSeeOther)
		}
		amount = &n
	}
	err = api.Refund(ctx(c), o.PaymentID, amount, key)
	switch s := gateway.StatusOf(err); {
	case err == nil:
		what := "everything that remained"
		if amount != nil {
			what = formatMoney(gateway.Money{Amount: *amount, Currency: o.Total.Currency})
		}
		st.AddFlash(session.FlashStatus, "Refunded "+what+".")
	case s == fiber.StatusConflict || s == fiber.StatusUnprocessableEntity:
		st.AddFlash(session.FlashAlert, "Refund not possible: "+problemText(err))
	default:
		return h.apiError(c, err)
	}
	return c.Redirect(back, fiber.StatusSeeOther)
}

// problemText is a problem's detail and field messages in one line, for a flash message.
func problemText(err error) string {
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		return ""
	}
	parts := []string{orDefault(ge.Detail, ge.Title)}
	for _, f := range ge.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return strings.Join(parts, "; ")
}

func (h *handlers) adminDelete(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	st := session.From(c)
	api := caller(c)
	// Read first, to name the order by its number once it is gone.
	o, err := api.Order(ctx(c), id)
	if err != nil {
		return h.apiError(c, err)
	}
	err = api.DeleteOrder(ctx(c), id)
	switch s := gateway.StatusOf(err); {
	case err == nil:
		st.AddFlash(session.FlashStatus, "Order "+o.Ref()+" is deleted.")
		return c.Redirect("/admin", fiber.StatusSeeOther)
	case s == fiber.StatusConflict:
		st.AddFlash(session.FlashAlert, "Delete not possible: "+problemText(err))
		return c.Redirect("/admin/orders/"+id, fiber.StatusSeeOther)
	default:
		return h.apiError(c, err)
	}
}

func (h *handlers) adminProducts(c *fiber.Ctx) error {
	products, err := caller(c).Products(ctx(c))
	if err != nil {
		return h.apiError(c, err)
	}
	return h.render(c, page{name: "admin/products", title: "Admin: products", nav: "admin", sub: "products", data: map[string]any{"Products": products}})
}

// productForm is the product form as typed, so a form with mistakes comes back filled in.
type productForm struct {
	ID, Name, Description, Price, Currency, Stock string
	Fields                                        []gateway.FieldError
}

func (f *productForm) input() (gateway.ProductInput, bool) {
	in := gateway.ProductInput{Name: strings.TrimSpace(f.Name), Description: strings.TrimSpace(f.Description)}
	bad := func(field, msg string) { f.Fields = append(f.Fields, gateway.FieldError{Field: field, Message: msg}) }
	if in.Name == "" || len(in.Name) > 200 {
		bad("name", "Enter a name of at most 200 characters.")
	}
	if len(in.Description) > 2000 {
		bad("description", "Keep the description under 2000 characters.")
	}
	cur := strings.ToUpper(strings.TrimSpace(f.Currency))
	if len(cur) != 3 || strings.Trim(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		bad("currency", "Enter a three-letter currency code such as EUR.")
	}
	amount, err := parseAmount(f.Price, cur)
	if err != nil {
		bad("price", "Enter a price like 19.99.")
	}
	in.Price = gateway.Money{Amount: amount, Currency: cur}
	stock, err := strconv.Atoi(strings.TrimSpace(f.Stock))
	if err != nil || stock < 0 {
		bad("stock", "Enter the stock as a whole number, 0 or more.")
	}
	in.Stock = stock
	return in, len(f.Fields) == 0
}

func readProductForm(c *fiber.Ctx) *productForm {
	return &productForm{Name: c.FormValue("name"), Description: c.FormValue("description"),
		Price: c.FormValue("price"), Currency: c.FormValue("currency"), Stock: c.FormValue("stock")}
}

func (h *handlers) renderProductForm(c *fiber.Ctx, status int, f *productForm) error {
	return h.render(c, page{name: "admin/product_form", title: "Admin: product", nav: "admin", sub: "products", status: status, data: f})
}

func (h *handlers) adminNewProduct(c *fiber.Ctx) error {
	return h.renderProductForm(c, fiber.StatusOK, &productForm{Currency: "EUR", Stock: "0"})
}

func (h *handlers) adminCreateProduct(c *fiber.Ctx) error {
	f := readProductForm(c)
	in, ok := f.input()
	if !ok {
		return h.renderProductForm(c, fiber.StatusUnprocessableEntity, f)
	}
	p, err := caller(c).CreateProduct(ctx(c), in)
	if done, err := h.productSaved(c, f, err); !done {
		return err
	}
	session.From(c).AddFlash(session.FlashStatus, "Product "+p.Name+" is created.")
	return c.Redirect("/admin/products", fiber.StatusSeeOther)
}

func (h *handlers) adminEditProduct(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	p, err := caller(c).Product(ctx(c), id)
	if err != nil {
		return h.apiError(c, err)
	}
	return h.renderProductForm(c, fiber.StatusOK, &productForm{
		ID: p.ID, Name: p.Name, Description: p.Description, Price: formatAmount(p.Price),
		Currency: p.Price.Currency, Stock: strconv.Itoa(p.Stock),
	})
}

func (h *handlers) adminUpdateProduct(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	f := readProductForm(c)
	f.ID = id
	in, ok := f.input()
	if !ok {
		return h.renderProductForm(c, fiber.StatusUnprocessableEntity, f)
	}
	err := caller(c).UpdateProduct(ctx(c), id, in)
	if done, err := h.productSaved(c, f, err); !done {
		return err
	}
	session.From(c).AddFlash(session.FlashStatus, "Product "+in.Name+" is saved.")
	return c.Redirect("/admin/products", fiber.StatusSeeOther)
}

// productSaved reports whether saving worked; if not, it returns what to answer instead:
// the form again with the API's objections for 409 and 422, an error page otherwise.
func (h *handlers) productSaved(c *fiber.Ctx, f *productForm, err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	var ge *gateway.Error
	if s := gateway.StatusOf(err); (s == fiber.StatusConflict || s == fiber.StatusUnprocessableEntity) && errors.As(err, &ge) {
		f.Fields = append([]gateway.FieldError{{Message: orDefault(ge.Detail, "The product could not be saved.")}}, ge.Fields...)
		return false, h.renderProductForm(c, s, f)
	}
	return false, h.apiError(c, err)
}

func (h *handlers) adminRetireProduct(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	if err := caller(c).RetireProduct(ctx(c), id); err != nil {
		return h.apiError(c, err)
	}
	session.From(c).AddFlash(session.FlashStatus, "The product is retired: it no longer shows in the catalog.")
	return c.Redirect("/admin/products", fiber.StatusSeeOther)
}
