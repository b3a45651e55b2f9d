package web_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/dpop"
	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/gateway"
)

// fakeAPI plays the gateway and the order and payment services behind it, with the
// contract's policies: it verifies DPoP-bound tokens against the fake realm, with a
// proof of their key on every call as the gateway demands of the webapp, checks roles,
// scopes and ownership, and honours idempotency keys. It records what it was sent.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	v      *authn.Verifier
	proofs *dpop.Verifier

	mu       sync.Mutex
	products []*gateway.Product
	orders   []*gateway.Order
	payments map[string]*gateway.Payment
	idem     map[string]any // caller subject + key -> first answer
	audit    map[string][]map[string]any
	// numbered counts the order numbers handed out.
	numbered int64
	calls    []apiCall
	// failures answer the next call whose "METHOD /path" has the prefix with the status.
	failures map[string]failure
}

type apiCall struct {
	Method, Path, Query, Auth, IdempotencyKey, RequestID string
	Body                                                 string
}

type failure struct {
	status     int
	retryAfter int
	body       map[string]any
}

// Product ids of the fake catalog.
const (
	mugID    = "0b6d6c5e-1c1a-4a43-9a6e-000000000001"
	teeID    = "0b6d6c5e-1c1a-4a43-9a6e-000000000002"
	posterID = "0b6d6c5e-1c1a-4a43-9a6e-000000000003"
)

func newFakeAPI(t *testing.T, iss *testkit.Issuer) *fakeAPI {
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Replay: dpop.NewMemory(0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	f := &fakeAPI{t: t, v: v, proofs: proofs, payments: map[string]*gateway.Payment{}, idem: map[string]any{},
		audit: map[string][]map[string]any{}, failures: map[string]failure{},
		products: []*gateway.Product{
			{ID: mugID, Name: "Gopher mug", Description: "Holds 350 ml of coffee.", Price: eur(1299), Stock: 10, Active: true, CreatedAt: now},
			{ID: teeID, Name: "Shop T-shirt", Description: "Organic cotton.", Price: eur(1999), Stock: 5, Active: true, CreatedAt: now},
			{ID: posterID, Name: "Airport poster", Description: "Sold out for now.", Price: eur(900), Stock: 0, Active: true, CreatedAt: now},
		}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/public/products", f.listProducts)
	mux.HandleFunc("GET /api/public/products/{id}", f.getProduct)
	mux.HandleFunc("POST /api/admin/products", f.auth(f.role("ADMIN", f.createProduct)))
	mux.HandleFunc("PUT /api/admin/products/{id}", f.auth(f.role("ADMIN", f.updateProduct)))
	mux.HandleFunc("DELETE /api/admin/products/{id}", f.auth(f.role("ADMIN", f.retireProduct)))
	mux.HandleFunc("POST /api/orders", f.auth(f.role("USER", f.createOrder)))
	mux.HandleFunc("GET /api/orders", f.auth(f.role("USER", f.myOrders)))
	mux.HandleFunc("GET /api/orders/admin/all", f.auth(f.scope("admin:read", f.allOrders)))
	mux.HandleFunc("GET /api/orders/admin/audit", f.auth(f.role("ADMIN", f.auditOf("order"))))
	mux.HandleFunc("GET /api/orders/{id}", f.auth(f.getOrder))
	mux.HandleFunc("POST /api/orders/{id}/cancel", f.auth(f.cancelOrder))
	mux.HandleFunc("POST /api/orders/{id}/pay", f.auth(f.payOrder))
	mux.HandleFunc("DELETE /api/orders/{id}", f.auth(f.deleteOrder))
	mux.HandleFunc("GET /api/payments/admin/audit", f.auth(f.role("ADMIN", f.auditOf("payment"))))
	mux.HandleFunc("GET /api/payments/{id}", f.auth(f.getPayment))
	mux.HandleFunc("POST /api/payments/{id}/refunds", f.auth(f.role("ADMIN", f.refund)))
	f.srv = httptest.NewServer(f.record(mux))
	t.Cleanup(f.srv.Close)
	return f
}

func eur(cents int64) gateway.Money { return gateway.Money{Amount: cents, Currency: "EUR"} }

func (f *fakeAPI) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			body.Write(b)
			r.Body = io.NopCloser(strings.NewReader(body.String()))
		}
		f.mu.Lock()
		f.calls = append(f.calls, apiCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
			IdempotencyKey: r.Header.Get("Idempotency-Key"), RequestID: r.Header.Get("X-Request-Id"), Body: body.String()})
		for prefix, fl := range f.failures {
			if strings.HasPrefix(r.Method+" "+r.URL.Path, prefix) {
				delete(f.failures, prefix)
				f.mu.Unlock()
				if fl.retryAfter > 0 {
					w.Header().Set("Retry-After", itoa(fl.retryAfter))
				}
				problem(w, fl.status, fl.body)
				return
			}
		}
		f.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// failNext makes the next call matching "METHOD /path" prefix answer status.
func (f *fakeAPI) failNext(prefix string, status, retryAfter int, body map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[prefix] = failure{status: status, retryAfter: retryAfter, body: body}
}

// callsTo returns the recorded calls whose "METHOD /path" starts with prefix.
func (f *fakeAPI) callsTo(prefix string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if strings.HasPrefix(c.Method+" "+c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func problem(w http.ResponseWriter, status int, extra map[string]any) {
	body := map[string]any{"title": http.StatusText(status), "status": status}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type handler func(w http.ResponseWriter, r *http.Request, p *authn.Principal)

func (f *fakeAPI) auth(next handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		if !ok {
			problem(w, http.StatusUnauthorized, nil)
			return
		}
		p, err := f.v.Verify(r.Context(), raw)
		if err == nil && p.KeyBound == "" {
			err = errors.New("the token is not DPoP-bound")
		}
		if err == nil {
			_, err = f.proofs.Verify(r.Context(), dpop.Request{Proof: r.Header.Get("DPoP"), Method: r.Method,
				URL: "http://" + r.Host + r.URL.Path, AccessToken: raw, BoundTo: p.KeyBound})
		}
		if err != nil {
			problem(w, http.StatusUnauthorized, map[string]any{"detail": err.Error()})
			return
		}
		next(w, r, p)
	}
}

func (f *fakeAPI) role(role string, next handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		if !p.HasRole(role) {
			problem(w, http.StatusForbidden, nil)
			return
		}
		next(w, r, p)
	}
}

func (f *fakeAPI) scope(scope string, next handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
		if !p.HasScope(scope) {
			problem(w, http.StatusForbidden, map[string]any{"detail": "needs " + scope})
			return
		}
		next(w, r, p)
	}
}

func (f *fakeAPI) listProducts(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*gateway.Product
	for _, p := range f.products {
		if p.Active {
			out = append(out, p)
		}
	}
	reply(w, http.StatusOK, out)
}

func (f *fakeAPI) product(id string) *gateway.Product {
	for _, p := range f.products {
		if p.ID == id && p.Active {
			return p
		}
	}
	return nil
}

func (f *fakeAPI) getProduct(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.product(r.PathValue("id")); p != nil {
		reply(w, http.StatusOK, p)
		return
	}
	problem(w, http.StatusNotFound, nil)
}

func (f *fakeAPI) createProduct(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	var in gateway.ProductInput
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		problem(w, http.StatusBadRequest, nil)
		return
	}
	if in.Price.Amount <= 0 {
		problem(w, http.StatusUnprocessableEntity, map[string]any{"detail": "invalid product", "errors": []map[string]string{{"field": "price.amount", "message": "must be positive"}}})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	np := &gateway.Product{ID: uuid.NewString(), Name: in.Name, Description: in.Description, Price: in.Price, Stock: in.Stock, Active: true, CreatedAt: time.Now().UTC()}
	f.products = append(f.products, np)
	f.log("order", p, "product.create", "product/"+np.ID, map[string]any{"name": np.Name, "price": np.Price, "stock": np.Stock, "active": true})
	reply(w, http.StatusCreated, np)
}

func (f *fakeAPI) updateProduct(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	var in gateway.ProductInput
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		problem(w, http.StatusBadRequest, nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pr := f.product(r.PathValue("id"))
	if pr == nil {
		problem(w, http.StatusNotFound, nil)
		return
	}
	changes := map[string]any{}
	if pr.Price != in.Price {
		changes["price"] = map[string]any{"from": pr.Price, "to": in.Price}
	}
	if pr.Stock != in.Stock {
		changes["stock"] = map[string]any{"from": pr.Stock, "to": in.Stock}
	}
	pr.Name, pr.Description, pr.Price, pr.Stock = in.Name, in.Description, in.Price, in.Stock
	f.log("order", p, "product.update", "product/"+pr.ID, map[string]any{"name": pr.Name, "changes": changes})
	reply(w, http.StatusOK, pr)
}

func (f *fakeAPI) retireProduct(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pr := f.product(r.PathValue("id"))
	if pr == nil {
		problem(w, http.StatusNotFound, nil)
		return
	}
	pr.Active = false
	f.log("order", p, "product.retire", "product/"+pr.ID, map[string]any{"name": pr.Name})
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeAPI) createOrder(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	var in struct {
		Items []gateway.NewOrderItem `json:"items"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || len(in.Items) == 0 {
		problem(w, http.StatusUnprocessableEntity, map[string]any{"detail": "an order needs items"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := p.Subject + "|" + r.Header.Get("Idempotency-Key")
	if first, ok := f.idem[key]; ok && r.Header.Get("Idempotency-Key") != "" {
		reply(w, http.StatusCreated, first)
		return
	}
	f.numbered++
	o := &gateway.Order{ID: uuid.NewString(), Number: 10000 + f.numbered, UserID: p.Subject, Customer: p.Username, Status: gateway.StatusPending,
		Total: eur(0), Refunded: eur(0), CreatedAt: time.Now().UTC()}
	for _, it := range in.Items {
		pr := f.product(it.ProductID)
		if pr == nil {
			problem(w, http.StatusUnprocessableEntity, map[string]any{"detail": "no such product", "errors": []map[string]string{{"field": "items", "message": "unknown product " + it.ProductID}}})
			return
		}
		if pr.Stock < it.Quantity {
			problem(w, http.StatusConflict, map[string]any{"detail": pr.Name + " is out of stock"})
			return
		}
		line := gateway.OrderItem{ProductID: pr.ID, Name: pr.Name, UnitPrice: pr.Price, Quantity: it.Quantity, LineTotal: eur(pr.Price.Amount * int64(it.Quantity))}
		o.Items = append(o.Items, line)
		o.Total.Amount += line.LineTotal.Amount
	}
	for _, it := range in.Items {
		f.product(it.ProductID).Stock -= it.Quantity
	}
	due := o.CreatedAt.Add(paymentHold)
	o.PaymentDueAt = &due
	f.orders = append(f.orders, o)
	f.idem[key] = o
	reply(w, http.StatusCreated, o)
}

func (f *fakeAPI) myOrders(w http.ResponseWriter, _ *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*gateway.Order{}
	for _, o := range f.orders {
		if o.UserID == p.Subject {
			out = append(out, o)
		}
	}
	reply(w, http.StatusOK, out)
}

func (f *fakeAPI) allOrders(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*gateway.Order{}
	for _, o := range f.orders {
		if s := r.URL.Query().Get("status"); s != "" && o.Status != s {
			continue
		}
		if c := r.URL.Query().Get("customer"); c != "" && o.Customer != c {
			continue
		}
		if n := r.URL.Query().Get("number"); n != "" && strconv.FormatInt(o.Number, 10) != n {
			continue
		}
		out = append(out, o)
	}
	// The "items" envelope, to prove the client reads both list shapes.
	reply(w, http.StatusOK, map[string]any{"items": out})
}

// owned finds an order the principal may see: their own, or any for an admin; others 404.
func (f *fakeAPI) owned(w http.ResponseWriter, r *http.Request, p *authn.Principal) *gateway.Order {
	for _, o := range f.orders {
		if o.ID == r.PathValue("id") && (o.UserID == p.Subject || p.HasRole("ADMIN")) {
			return o
		}
	}
	problem(w, http.StatusNotFound, nil)
	return nil
}

func (f *fakeAPI) getOrder(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.owned(w, r, p); o != nil {
		reply(w, http.StatusOK, o)
	}
}

func (f *fakeAPI) cancelOrder(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owned(w, r, p)
	if o == nil {
		return
	}
	if o.Status != gateway.StatusPending {
		problem(w, http.StatusConflict, map[string]any{"detail": "only pending orders can be cancelled"})
		return
	}
	o.Status = gateway.StatusCancelled
	reply(w, http.StatusOK, o)
}

func (f *fakeAPI) payOrder(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	var in struct {
		Card gateway.Card `json:"card"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		problem(w, http.StatusBadRequest, nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owned(w, r, p)
	if o == nil {
		return
	}
	key := p.Subject + "|pay|" + r.Header.Get("Idempotency-Key")
	if first, ok := f.idem[key]; ok {
		reply(w, http.StatusCreated, first)
		return
	}
	if o.Status != gateway.StatusPending {
		problem(w, http.StatusConflict, map[string]any{"detail": "the order is " + o.Status})
		return
	}
	pay := &gateway.Payment{ID: uuid.NewString(), OrderID: o.ID, UserID: o.UserID, Amount: o.Total, Refunded: eur(0),
		CardBrand: "visa", CardLast4: in.Card.Number[len(in.Card.Number)-4:], CreatedAt: time.Now().UTC()}
	switch in.Card.Number {
	case "4242424242424242":
		pay.Status = "approved"
		o.Status, o.PaymentID = gateway.StatusPaid, pay.ID
	case "4000000000000002", "4000000000009995":
		reason := "card_declined"
		if strings.HasSuffix(in.Card.Number, "9995") {
			reason = "insufficient_funds"
		}
		pay.Status, pay.Reason = "declined", reason
		f.payments[pay.ID] = pay
		problem(w, http.StatusPaymentRequired, map[string]any{"detail": "the card was declined", "reason": reason, "paymentId": pay.ID})
		return
	case "4000000000000119":
		problem(w, http.StatusBadGateway, map[string]any{"detail": "processor error"})
		return
	default:
		problem(w, http.StatusUnprocessableEntity, map[string]any{"detail": "invalid card", "errors": []map[string]string{{"field": "card.number", "message": "not a valid card number"}}})
		return
	}
	f.payments[pay.ID] = pay
	f.idem[key] = pay
	reply(w, http.StatusCreated, pay)
}

func (f *fakeAPI) deleteOrder(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owned(w, r, p)
	if o == nil {
		return
	}
	f.orders = slices.DeleteFunc(f.orders, func(x *gateway.Order) bool { return x == o })
	f.log("order", p, "order.delete", "order/"+o.ID, map[string]any{"number": o.Number, "customer": o.Customer, "status": o.Status, "total": o.Total})
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeAPI) getPayment(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pay, ok := f.payments[r.PathValue("id")]
	if !ok || (pay.UserID != p.Subject && !p.HasRole("ADMIN")) {
		problem(w, http.StatusNotFound, nil)
		return
	}
	reply(w, http.StatusOK, pay)
}

func (f *fakeAPI) refund(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	var in struct {
		Amount *int64 `json:"amount"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || r.Header.Get("Idempotency-Key") == "" {
		problem(w, http.StatusBadRequest, nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pay, ok := f.payments[r.PathValue("id")]
	if !ok {
		problem(w, http.StatusNotFound, nil)
		return
	}
	remaining := pay.Amount.Amount - pay.Refunded.Amount
	amount := remaining
	if in.Amount != nil {
		amount = *in.Amount
	}
	if amount <= 0 || amount > remaining {
		problem(w, http.StatusUnprocessableEntity, map[string]any{"detail": "the refund exceeds what remains", "errors": []map[string]string{{"field": "amount", "message": "at most " + itoa(int(remaining))}}})
		return
	}
	pay.Refunded.Amount += amount
	pay.Status = "partially_refunded"
	for _, o := range f.orders {
		if o.ID == pay.OrderID {
			o.Refunded.Amount = pay.Refunded.Amount
			if pay.Refunded.Amount == pay.Amount.Amount {
				o.Status, pay.Status = gateway.StatusRefunded, "refunded"
			}
		}
	}
	f.log("payment", p, "payment.refund", "payment/"+pay.ID, map[string]any{"orderId": pay.OrderID, "amount": amount, "currency": pay.Amount.Currency,
		"fullyRefunded": pay.Refunded.Amount == pay.Amount.Amount})
	reply(w, http.StatusCreated, pay)
}

// log writes an audit entry in the services' shape.
func (f *fakeAPI) log(source string, p *authn.Principal, action, resource string, detail map[string]any) {
	f.audit[source] = append(f.audit[source], map[string]any{
		"id": uuid.NewString(), "at": time.Now().UTC().Format(time.RFC3339Nano), "actor": map[string]any{"subject": p.Subject, "username": p.Username},
		"action": action, "resource": resource, "detail": detail, "requestId": "req-" + uuid.NewString()[:8],
	})
}

// auditOf answers a service's audit log as the services do: newest first, filtered by
// action and actor, paged by limit and offset.
func (f *fakeAPI) auditOf(source string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ *authn.Principal) {
		f.mu.Lock()
		defer f.mu.Unlock()
		q := r.URL.Query()
		out := []map[string]any{}
		for _, e := range slices.Backward(f.audit[source]) {
			if a := q.Get("action"); a != "" && e["action"] != a {
				continue
			}
			if a := q.Get("actor"); a != "" && e["actor"].(map[string]any)["username"] != a {
				continue
			}
			out = append(out, e)
		}
		offset, _ := strconv.Atoi(q.Get("offset"))
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil {
			limit = 50
		}
		out = out[min(offset, len(out)):]
		reply(w, http.StatusOK, out[:min(limit, len(out))])
	}
}
