package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite", to read the store behind the API's back
	"github.com/google/uuid"

	"example.com/shop/order/internal/httpapi"
	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/payment"
	"example.com/shop/order/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"
)

// Seed catalog products (migration 202607010002).
const (
	mugID   = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d01"
	towelID = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d02"
	printID = "0b8f7a52-6c1e-4d0a-9d6e-1f2a3b4c5d08" // 3 in stock
)

// Test cards of the payment contract.
const (
	cardApproved  = "4242424242424242"
	cardDeclined  = "4000000000000002"
	cardProcessor = "4000000000000119"
)

func cardBody(number string) string {
	return `{"card":{"number":"` + number + `","expMonth":12,"expYear":2099,"cvc":"123","holder":"Alice Example"}}`
}

// realm is a fake Keycloak realm with the callers every test speaks as.
type realm struct {
	iss                                                     *testkit.Issuer
	alice, bob, admin, adminNoScope, wrongAudience, service string
	aliceSub, bobSub, adminSub                              string
	verifier                                                *authn.Verifier
}

func newRealm(t *testing.T) *realm {
	t.Helper()
	iss := testkit.NewIssuer(t)
	// As in production: tokens addressed to the order service itself verify too, so the
	// route policies answer a service token with 403.
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"order-service"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &realm{iss: iss, verifier: v, aliceSub: "alice-" + uuid.NewString(), bobSub: "bob-" + uuid.NewString(), adminSub: "ada-" + uuid.NewString()}
	r.alice = iss.Token(t, iss.User(r.aliceSub, "alice", "USER"))
	r.bob = iss.Token(t, iss.User(r.bobSub, "bob", "USER"))
	r.admin = iss.Token(t, iss.User(r.adminSub, "ada", "USER", "ADMIN").With(testkit.Claims{"scope": "openid profile admin:read"}))
	r.adminNoScope = iss.Token(t, iss.User(r.adminSub, "ada", "USER", "ADMIN"))
	r.wrongAudience = iss.Token(t, iss.User(r.aliceSub, "alice", "USER").With(testkit.Claims{"aud": "payment-service"}))
	// The payment service's own client-credentials token, addressed to this service, as
	// the realm issues it: scopes basic and roles only, so no username.
	r.service = iss.Token(t, iss.Service("payment-service", "order-service", "SERVICE").With(testkit.Claims{"preferred_username": nil}))
	return r
}

// shopper mints a token for a new shopper.
func (r *realm) shopper(t *testing.T, name string) string {
	return r.iss.Token(t, r.iss.User(name+"-"+uuid.NewString(), name, "USER"))
}

// env is the order service under test: the real API on a fresh SQLite database, served on
// a loopback port so the fake payment service can read orders back from it.
type env struct {
	t      *testing.T
	realm  *realm
	api    *httpapi.API
	store  *store.Store
	dbPath string
	pay    *fakePayments
	logs   *testkit.Logs
	log    *slog.Logger // writes to logs
}

type envOption func(*envConfig)

type envConfig struct {
	paymentTimeout time.Duration
	paymentURL     string      // overrides the fake (e.g. a closed port)
	rules          order.Rules // zero: the service's defaults
}

func withRules(r order.Rules) envOption { return func(c *envConfig) { c.rules = r } }

func withPaymentTimeout(d time.Duration) envOption {
	return func(c *envConfig) { c.paymentTimeout = d }
}

func withPaymentURL(u string) envOption { return func(c *envConfig) { c.paymentURL = u } }

func newEnv(t *testing.T, r *realm, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{paymentTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	e := &env{t: t, realm: r, dbPath: filepath.Join(t.TempDir(), "order.db"), logs: &testkit.Logs{}}
	var err error
	if e.store, err = store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: e.dbPath}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.pay = newFakePayments(t)
	payURL := e.pay.srv.URL
	if cfg.paymentURL != "" {
		payURL = cfg.paymentURL
	}
	client, err := payment.New(payURL, cfg.paymentTimeout, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.log = slog.New(slog.NewJSONHandler(e.logs, nil))
	e.api = httpapi.New(httpapi.Deps{Store: e.store, Payments: client, Authenticate: r.verifier.Middleware(e.log), Logger: e.log, Rules: cfg.rules})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, e.api.App, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	e.pay.orderURL = "http://" + ln.Addr().String()
	// server.Serve cannot stop a server that has not started serving yet (it would wait
	// forever), so wait until it answers before a short test can end.
	for i := 0; ; i++ {
		resp, err := http.Get(e.pay.orderURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the order service does not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

// response is an answer of the API, fully read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// decode reads the JSON body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

// problem reads the body as problem+json, failing unless it is one with the answer's status.
func (r response) problem(t *testing.T) problem.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("content type %q, want %s: %s", ct, problem.ContentType, r)
	}
	var p problem.Problem
	r.decode(t, &p)
	if p.Status != r.status || p.Title == "" || p.RequestID == "" {
		t.Fatalf("problem %+v for %s", p, r)
	}
	return p
}

// do sends a request through the app. body is sent as is when it is a string, as JSON
// otherwise; hdr lists extra header names and values.
func (e *env) do(method, path, token string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.api.App.Test(req, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// orderOf is an order as the API answers it.
type orderOf struct {
	ID       string `json:"id"`
	UserID   string `json:"userId"`
	Customer string `json:"customer"`
	Status   string `json:"status"`
	Items    []struct {
		ProductID string `json:"productId"`
		Name      string `json:"name"`
		UnitPrice money  `json:"unitPrice"`
		Quantity  int    `json:"quantity"`
		LineTotal money  `json:"lineTotal"`
	} `json:"items"`
	Total     money     `json:"total"`
	Refunded  money     `json:"refunded"`
	PaymentID string    `json:"paymentId"`
	CreatedAt time.Time `json:"createdAt"`
}

type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// createOrder creates an order through the API and returns it.
func (e *env) createOrder(token string, lines ...order.Line) orderOf {
	e.t.Helper()
	items := make([]map[string]any, len(lines))
	for i, l := range lines {
		items[i] = map[string]any{"productId": l.ProductID, "quantity": l.Quantity}
	}
	r := e.do(http.MethodPost, "/api/orders", token, map[string]any{"items": items})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create order: %s", r)
	}
	var o orderOf
	r.decode(e.t, &o)
	return o
}

// storedOrder reads an order from the store, bypassing the API.
func (e *env) storedOrder(id string) order.Order {
	e.t.Helper()
	o, err := e.store.Order(context.Background(), id)
	if err != nil {
		e.t.Fatalf("order %s: %v", id, err)
	}
	return o
}

func (e *env) stock(id string) int {
	e.t.Helper()
	var stock int
	e.query(func(db *sql.DB) error { return db.QueryRow("SELECT stock FROM products WHERE id = ?", id).Scan(&stock) })
	return stock
}

func (e *env) query(f func(db *sql.DB) error) {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if err := f(db); err != nil {
		e.t.Fatal(err)
	}
}

// snapshot is every row of every table, read behind the API's back: two equal snapshots
// mean a request changed nothing, deleted orders and audit entries included.
func (e *env) snapshot() string {
	e.t.Helper()
	var out strings.Builder
	e.query(func(db *sql.DB) error {
		for _, table := range []string{"products", "orders", "order_items", "audit_log"} {
			rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
			if err != nil {
				return err
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				fmt.Fprintf(&out, "%s %v\n", table, vals)
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	return out.String()
}

// fakePayments plays the payment service of the contract: it reads the order back from the
// order service with the propagated token, charges its total, replays answers per
// Idempotency-Key (409 while the key's first request is still charging), and can be made
// slow or failing.
type fakePayments struct {
	srv      *httptest.Server
	orderURL string

	mu      sync.Mutex
	calls   []paymentCall
	answers map[string]fakeAnswer // by Idempotency-Key
	running map[string]bool       // keys whose first request is still charging
	charged []money               // approved charges
	delay   time.Duration         // before answering the next call (the charge happens first)
	fail    int                   // status to answer the next call with, without charging
}

type paymentCall struct {
	Authorization, RequestID, IdempotencyKey string
	Body                                     map[string]any
}

type fakeAnswer struct {
	status int
	body   []byte
}

func newFakePayments(t *testing.T) *fakePayments {
	f := &fakePayments{answers: map[string]fakeAnswer{}, running: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePayments) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/payments" {
		http.NotFound(w, r)
		return
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	call := paymentCall{
		Authorization: r.Header.Get("Authorization"), RequestID: r.Header.Get("X-Request-Id"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body,
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	delay, fail := f.delay, f.fail
	f.delay, f.fail = 0, 0
	answer, replay := f.answers[call.IdempotencyKey]
	running := f.running[call.IdempotencyKey]
	if fail == 0 && !replay && !running {
		f.running[call.IdempotencyKey] = true
	}
	f.mu.Unlock()

	switch {
	case fail != 0:
		writeAnswer(w, fakeAnswer{status: fail, body: []byte(`{"title":"failing","status":` + fmt.Sprint(fail) + `}`)})
		return
	case running: // as the payment service answers a key whose first request is in flight
		writeAnswer(w, fakeAnswer{status: 409, body: []byte(`{"title":"Conflict","status":409,"detail":"a payment for this order is being processed"}`)})
		return
	case replay:
		w.Header().Set("Idempotent-Replayed", "true")
	default:
		answer = f.charge(call)
		f.mu.Lock()
		f.answers[call.IdempotencyKey] = answer
		delete(f.running, call.IdempotencyKey)
		f.mu.Unlock()
	}
	time.Sleep(delay)
	writeAnswer(w, answer)
}

func writeAnswer(w http.ResponseWriter, a fakeAnswer) {
	ct := "application/json"
	if a.status >= 400 {
		ct = problem.ContentType
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// charge does what the real payment service does: read the order with the caller's token,
// refuse unless pending, and charge the order's total according to the test card.
func (f *fakePayments) charge(call paymentCall) fakeAnswer {
	orderID, _ := call.Body["orderId"].(string)
	card, _ := call.Body["card"].(map[string]any)
	number, _ := card["number"].(string)
	req, _ := http.NewRequest(http.MethodGet, f.orderURL+"/api/orders/"+orderID, nil)
	req.Header.Set("Authorization", call.Authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fakeAnswer{status: 502, body: []byte(`{"detail":"order service unreachable"}`)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fakeAnswer{status: 502, body: fmt.Appendf(nil, `{"detail":"order service answered %d"}`, resp.StatusCode)}
	}
	var o orderOf
	_ = json.NewDecoder(resp.Body).Decode(&o)
	if o.Status != "pending" {
		return fakeAnswer{status: 409, body: []byte(`{"detail":"the order is not pending"}`)}
	}
	id := uuid.NewString()
	switch number {
	case cardApproved:
		f.mu.Lock()
		f.charged = append(f.charged, o.Total)
		f.mu.Unlock()
		b, _ := json.Marshal(map[string]any{"id": id, "orderId": o.ID, "amount": o.Total, "status": "approved", "cardBrand": "visa", "cardLast4": "4242"})
		return fakeAnswer{status: 201, body: b}
	case cardDeclined:
		return fakeAnswer{status: 402, body: fmt.Appendf(nil, `{"title":"Payment Required","status":402,"detail":"declined","paymentId":%q,"reason":"card_declined"}`, id)}
	case cardProcessor:
		return fakeAnswer{status: 502, body: fmt.Appendf(nil, `{"title":"Bad Gateway","status":502,"detail":"processor error","paymentId":%q,"reason":"processor_error"}`, id)}
	}
	return fakeAnswer{status: 422, body: []byte(`{"title":"Unprocessable Entity","status":422,"detail":"card number is invalid","errors":[{"field":"card.number","message":"fails the Luhn check"}]}`)}
}

func (f *fakePayments) callLog() []paymentCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]paymentCall(nil), f.calls...)
}

func (f *fakePayments) charges() []money {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]money(nil), f.charged...)
}

func (e *env) storedProduct(id string) order.Product {
	e.t.Helper()
	p, err := e.store.Product(context.Background(), id)
	if err != nil {
		e.t.Fatalf("product %s: %v", id, err)
	}
	return p
}
