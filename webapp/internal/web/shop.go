package web

import (
	"crypto/rand"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
)

// testCards are the payment service's test cards (docs/api-contract.md), shown on the
// payment page so nobody has to look them up.
var testCards = []struct{ Number, Result string }{
	{"4242 4242 4242 4242", "Approved"},
	{"4000 0000 0000 0002", "Declined"},
	{"4000 0000 0000 9995", "Declined: insufficient funds"},
	{"4000 0000 0000 0119", "Processor error"},
}

func (h *handlers) catalog(c *fiber.Ctx) error {
	products, err := h.API.As("").Products(ctx(c))
	if err != nil {
		return h.apiError(c, err)
	}
	return h.render(c, page{name: "catalog", title: "Products", nav: "catalog", data: map[string]any{"Products": products}})
}

func (h *handlers) product(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	p, err := h.API.As("").Product(ctx(c), id)
	if err != nil {
		return h.apiError(c, err)
	}
	return h.render(c, page{name: "product", title: p.Name, nav: "catalog", data: map[string]any{"Product": p}})
}

// cartLine is a cart line priced from the current catalog.
type cartLine struct {
	ProductID string
	Name      string
	Quantity  int
	Price     gateway.Money
	Total     gateway.Money
	Available bool
}

type cartView struct {
	Lines       []cartLine
	Total       *gateway.Money
	CanCheckout bool
	Key         string
	Fields      []gateway.FieldError
	// MaxQuantity bounds the quantity inputs: the most one order may take of a product.
	MaxQuantity int
}

// priceCart looks the cart's products up in the catalog. Prices shown are the catalog's;
// the order service prices the order itself, so nothing here is trusted for money.
func (h *handlers) priceCart(c *fiber.Ctx, cart session.Cart) (cartView, error) {
	var v cartView
	if len(cart) == 0 {
		return v, nil
	}
	products, err := h.API.As("").Products(ctx(c))
	if err != nil {
		return v, err
	}
	byID := make(map[string]gateway.Product, len(products))
	for _, p := range products {
		byID[p.ID] = p
	}
	var total gateway.Money
	sameCurrency := true
	for _, l := range cart {
		line := cartLine{ProductID: l.ProductID, Quantity: l.Quantity, Name: "this product"}
		if p, ok := byID[l.ProductID]; ok {
			line.Name, line.Price, line.Available = p.Name, p.Price, true
			line.Total = gateway.Money{Amount: p.Price.Amount * int64(l.Quantity), Currency: p.Price.Currency}
			if total.Currency == "" {
				total.Currency = p.Price.Currency
			}
			sameCurrency = sameCurrency && total.Currency == p.Price.Currency
			total.Amount += line.Total.Amount
			v.CanCheckout = true
		}
		v.Lines = append(v.Lines, line)
	}
	if sameCurrency && v.CanCheckout {
		v.Total = &total
	}
	return v, nil
}

func (h *handlers) cart(c *fiber.Ctx) error {
	v, err := h.priceCart(c, session.From(c).Cart)
	if err != nil {
		return h.apiError(c, err)
	}
	v.MaxQuantity = session.MaxLineQuantity
	return h.render(c, page{name: "cart", title: "Your cart", nav: "cart", data: v})
}

// addToCart adds a catalog product to the session's cart, then goes back to the page the
// form was on.
func (h *handlers) addToCart(c *fiber.Ctx) error {
	st := session.From(c)
	back := auth.SafeReturnPath(c.FormValue("return"))
	id := c.FormValue("productId")
	qty, err := strconv.Atoi(orDefault(c.FormValue("quantity"), "1"))
	if err != nil || !validID(id) {
		st.AddFlash(session.FlashAlert, session.ErrBadQuantity.Error())
		return c.Redirect(back, fiber.StatusSeeOther)
	}
	// Only products that exist go into the cart, so a session cannot be filled with junk.
	p, err := h.API.As("").Product(ctx(c), id)
	if gateway.StatusOf(err) == fiber.StatusNotFound {
		st.AddFlash(session.FlashAlert, "That product is no longer available.")
		return c.Redirect(back, fiber.StatusSeeOther)
	}
	if err != nil {
		return h.apiError(c, err)
	}
	if err := st.Cart.Add(id, qty); err != nil {
		st.AddFlash(session.FlashAlert, err.Error())
		return c.Redirect(back, fiber.StatusSeeOther)
	}
	st.AddFlash(session.FlashStatus, "Added "+p.Name+" to your cart.")
	return c.Redirect(back, fiber.StatusSeeOther)
}

func (h *handlers) updateCart(c *fiber.Ctx) error {
	st := session.From(c)
	qty, err := strconv.Atoi(c.FormValue("quantity"))
	if err == nil {
		err = st.Cart.Set(c.Params("id"), qty)
	}
	if err != nil {
		st.AddFlash(session.FlashAlert, session.ErrBadQuantity.Error())
	}
	return c.Redirect("/cart", fiber.StatusSeeOther)
}

// newKey is a fresh idempotency key for one rendering of a form that creates something: a
// double submit of that form sends the same key, and the API answers it with the first
// result instead of creating a second order or charge.
func newKey() string { return rand.Text() }

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

func (h *handlers) checkoutPage(c *fiber.Ctx) error {
	st := session.From(c)
	if len(st.Cart) == 0 {
		st.AddFlash(session.FlashStatus, "Your cart is empty.")
		return c.Redirect("/cart", fiber.StatusSeeOther)
	}
	v, err := h.priceCart(c, st.Cart)
	if err != nil {
		return h.apiError(c, err)
	}
	v.Key = newKey()
	return h.render(c, page{name: "checkout", title: "Check out", nav: "cart", data: v})
}

// checkout creates the order from the cart, then asks for payment.
func (h *handlers) checkout(c *fiber.Ctx) error {
	st := session.From(c)
	key := c.FormValue("idempotencyKey")
	if !keyPattern.MatchString(key) {
		return &pageError{Status: fiber.StatusBadRequest, Heading: "Please try again", Message: "The checkout form was incomplete. Go back to the cart and check out again.", Back: "/cart"}
	}
	if lc := st.LastCheckout; lc != nil && lc.Key == key {
		// The same form again after it went through: same order.
		return c.Redirect("/orders/"+lc.OrderID+"/pay", fiber.StatusSeeOther)
	}
	if len(st.Cart) == 0 {
		st.AddFlash(session.FlashStatus, "Your cart is empty.")
		return c.Redirect("/cart", fiber.StatusSeeOther)
	}
	items := make([]gateway.NewOrderItem, 0, len(st.Cart))
	for _, l := range st.Cart {
		items = append(items, gateway.NewOrderItem{ProductID: l.ProductID, Quantity: l.Quantity})
	}
	order, err := caller(c).CreateOrder(ctx(c), items, key)
	if s := gateway.StatusOf(err); s == fiber.StatusConflict || s == fiber.StatusUnprocessableEntity {
		// Out of stock, a retired product...: show what to fix on the checkout page; the
		// cart is unchanged.
		var ge *gateway.Error
		errors.As(err, &ge)
		v, perr := h.priceCart(c, st.Cart)
		if perr != nil {
			return h.apiError(c, err)
		}
		v.Key = newKey()
		msg := orDefault(ge.Detail, "The order could not be placed as it is.")
		if ge.Reason == reasonTooManyUnpaid {
			msg = tooManyUnpaid
		}
		v.Fields = append([]gateway.FieldError{{Message: msg}}, ge.Fields...)
		return h.render(c, page{name: "checkout", title: "Check out", nav: "cart", status: s, data: v})
	}
	if err != nil {
		return h.apiError(c, err)
	}
	st.Cart = nil
	st.LastCheckout = &session.Checkout{Key: key, OrderID: order.ID}
	st.AddFlash(session.FlashStatus, "Your order is placed. Please pay for it below.")
	return c.Redirect("/orders/"+order.ID+"/pay", fiber.StatusSeeOther)
}

func (h *handlers) orders(c *fiber.Ctx) error {
	orders, err := caller(c).MyOrders(ctx(c))
	if err != nil {
		return h.apiError(c, err)
	}
	return h.render(c, page{name: "orders", title: "My orders", nav: "orders", data: map[string]any{"Orders": orders}})
}

type orderView struct {
	Order              *gateway.Order
	Payment            *gateway.Payment
	PaymentUnavailable bool
	holdView
	// Admin console only.
	CanRefund bool
	Remaining gateway.Money
	Key       string
}

// loadOrder fetches an order and, when it has one, its payment. A payment that cannot be
// fetched does not hide the order.
func (h *handlers) loadOrder(c *fiber.Ctx) (*orderView, error) {
	id := c.Params("id")
	if !validID(id) {
		return nil, notFound()
	}
	api := caller(c)
	o, err := api.Order(ctx(c), id)
	if err != nil {
		return nil, h.apiError(c, err)
	}
	v := &orderView{Order: o}
	if o.PaymentID != "" && validID(o.PaymentID) {
		if v.Payment, err = api.Payment(ctx(c), o.PaymentID); err != nil {
			h.Log.Warn("payment details unavailable", "order", o.ID, "err", err)
			v.PaymentUnavailable = true
		}
	}
	return v, nil
}

func (h *handlers) order(c *fiber.Ctx) error {
	v, err := h.loadOrder(c)
	if err != nil {
		return err
	}
	v.holdView = holdOf(v.Order, h.now())
	return h.render(c, page{name: "order", title: "Order", nav: "orders", data: v})
}

func (h *handlers) cancel(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	st := session.From(c)
	err := caller(c).CancelOrder(ctx(c), id)
	switch gateway.StatusOf(err) {
	case 0:
		st.AddFlash(session.FlashStatus, "Your order is cancelled.")
	case fiber.StatusConflict:
		st.AddFlash(session.FlashAlert, "This order can no longer be cancelled.")
	default:
		return h.apiError(c, err)
	}
	return c.Redirect("/orders/"+id, fiber.StatusSeeOther)
}

// payView is the payment form. Card number and CVC are never put back into the page.
type payView struct {
	Order     *gateway.Order
	Key       string
	TestCards any
	Declined  string
	Fields    []gateway.FieldError
	ExpMonth  string
	ExpYear   string
	Holder    string
	holdView
}

func (h *handlers) payPage(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	o, err := caller(c).Order(ctx(c), id)
	if err != nil {
		return h.apiError(c, err)
	}
	if o.Status != gateway.StatusPending {
		// An expired order's page says what happened and what to do.
		if !o.Expired() {
			session.From(c).AddFlash(session.FlashStatus, "This order is "+o.Status+"; there is nothing to pay.")
		}
		return c.Redirect("/orders/"+o.ID, fiber.StatusSeeOther)
	}
	return h.renderPay(c, fiber.StatusOK, &payView{Order: o})
}

func (h *handlers) renderPay(c *fiber.Ctx, status int, v *payView) error {
	// Every form gets a new key: a retry after a decline is a new charge attempt, while a
	// double submit of one form stays one.
	v.Key, v.TestCards = newKey(), testCards
	v.holdView = holdOf(v.Order, h.now())
	return h.render(c, page{name: "pay", title: "Pay", nav: "orders", status: status, data: v})
}

func (h *handlers) pay(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validID(id) {
		return notFound()
	}
	st := session.From(c)
	api := caller(c)
	card, fields := readCard(c, h.now())
	key := c.FormValue("idempotencyKey")
	if !keyPattern.MatchString(key) {
		fields = append(fields, gateway.FieldError{Message: "The form was incomplete; please fill it in again."})
	}
	v := &payView{Fields: fields, ExpMonth: c.FormValue("expMonth"), ExpYear: c.FormValue("expYear"), Holder: card.Holder}
	if len(fields) > 0 {
		o, err := api.Order(ctx(c), id)
		if err != nil {
			return h.apiError(c, err)
		}
		v.Order = o
		return h.renderPay(c, fiber.StatusUnprocessableEntity, v)
	}
	err := api.PayOrder(ctx(c), id, card, key)
	var ge *gateway.Error
	switch s := gateway.StatusOf(err); {
	case err == nil:
		st.AddFlash(session.FlashStatus, "Payment approved. Thank you for your order!")
		return c.Redirect("/orders/"+id, fiber.StatusSeeOther)
	case s == fiber.StatusConflict:
		// Usually a double submit whose first request paid the order: say so plainly.
		errors.As(err, &ge)
		if o, oerr := api.Order(ctx(c), id); oerr == nil && o.Status == gateway.StatusPaid {
			st.AddFlash(session.FlashStatus, "This order is paid. Thank you!")
		} else if ge.Reason == reasonOrderExpired || (oerr == nil && o.Expired()) {
			st.AddFlash(session.FlashAlert, "This order expired before it was paid, so nothing was charged.")
		} else {
			errors.As(err, &ge)
			st.AddFlash(session.FlashAlert, orDefault(ge.Detail, "This order cannot be paid any more."))
		}
		return c.Redirect("/orders/"+id, fiber.StatusSeeOther)
	case s == fiber.StatusPaymentRequired || s == fiber.StatusUnprocessableEntity:
		errors.As(err, &ge)
		o, oerr := api.Order(ctx(c), id)
		if oerr != nil {
			return h.apiError(c, oerr)
		}
		v.Order = o
		if s == fiber.StatusPaymentRequired {
			v.Declined = declineSentence(ge.Reason)
		} else {
			v.Fields = append([]gateway.FieldError{{Message: orDefault(ge.Detail, "Please check the card details.")}}, ge.Fields...)
		}
		return h.renderPay(c, s, v)
	default:
		return h.apiError(c, err)
	}
}

// readCard reads and checks the card form. The checks are for the shopper's convenience
// only; the payment service decides.
func readCard(c *fiber.Ctx, now time.Time) (gateway.Card, []gateway.FieldError) {
	var fields []gateway.FieldError
	bad := func(field, msg string) { fields = append(fields, gateway.FieldError{Field: field, Message: msg}) }
	card := gateway.Card{
		Number: strings.NewReplacer(" ", "", "-", "").Replace(c.FormValue("number")),
		CVC:    strings.TrimSpace(c.FormValue("cvc")),
		Holder: strings.TrimSpace(c.FormValue("holder")),
	}
	if len(card.Number) < 12 || len(card.Number) > 19 || !digitsOnly(card.Number) {
		bad("number", "Enter the card number, 12 to 19 digits.")
	}
	month, err := strconv.Atoi(strings.TrimSpace(c.FormValue("expMonth")))
	if err != nil || month < 1 || month > 12 {
		bad("expMonth", "Enter the expiry month, 1 to 12.")
	}
	year, err := strconv.Atoi(strings.TrimSpace(c.FormValue("expYear")))
	if err == nil && year < 100 {
		year += 2000
	}
	if err != nil || year < now.Year() || year > now.Year()+50 {
		bad("expYear", "Enter the expiry year, e.g. "+strconv.Itoa(now.Year()+2)+".")
	}
	card.ExpMonth, card.ExpYear = month, year
	if len(card.CVC) < 3 || len(card.CVC) > 4 || !digitsOnly(card.CVC) {
		bad("cvc", "Enter the 3 or 4 digits on the back of the card.")
	}
	if card.Holder == "" || len(card.Holder) > 100 {
		bad("holder", "Enter the name on the card.")
	}
	return card, fields
}

func digitsOnly(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
