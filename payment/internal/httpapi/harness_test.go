package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	_ "github.com/glebarez/go-sqlite" // database/sql driver to read the store's tables directly
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"example.com/shop/payment/internal/httpapi"
	"example.com/shop/payment/internal/orders"
	"example.com/shop/payment/internal/outbox"
	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
	"example.com/shop/payment/internal/store"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/testkit"
)

// The handler tests run the whole service in-process: the real route table, token
// verification against testkit's fake Keycloak, the real store on a SQLite file, the
// simulated processor, and a fake order service on httptest that enforces the order
// service's own rules (owner or ADMIN reads an order). Every response is also checked
// against api/openapi.yaml, status included.

// Subjects of the test users.
const (
	aliceSub = "alice-sub"
	bobSub   = "bob-sub"
	adaSub   = "ada-sub"
)

// caller is one kind of client in the route x caller matrix.
type caller string

const (
	anonymous     caller = "anonymous"
	wrongAudience caller = "wrong audience"
	owner         caller = "shopper owner"
	otherShopper  caller = "other shopper"
	admin         caller = "admin"
	adminNoScope  caller = "admin without admin:read"
	serviceAcct   caller = "service account"
)

var callers = []caller{anonymous, wrongAudience, owner, otherShopper, admin, adminNoScope, serviceAcct}

// tokens mints one token per caller.
func tokens(t *testing.T, iss *testkit.Issuer) map[caller]string {
	return map[caller]string{
		anonymous:     "",
		wrongAudience: iss.Token(t, iss.User(aliceSub, "alice", "USER").With(testkit.Claims{"aud": "account"})),
		owner:         iss.Token(t, iss.User(aliceSub, "alice", "USER")),
		otherShopper:  iss.Token(t, iss.User(bobSub, "bob", "USER")),
		admin:         iss.Token(t, iss.User(adaSub, "ada", "USER", "ADMIN").With(testkit.Claims{"scope": "openid profile admin:read"})),
		adminNoScope:  iss.Token(t, iss.User(adaSub, "ada", "USER", "ADMIN")),
		// The order service's own client-credentials token, addressed to this service.
		serviceAcct: iss.Token(t, iss.Service("order-service", "payment-service", "SERVICE")),
	}
}

// countingProcessor counts charges that reach the processor, and can slow them down to
// widen race windows.
type countingProcessor struct {
	*processor.Simulated
	calls atomic.Int64
	delay time.Duration
	// charged, when set, runs after a charge is made and before its answer returns.
	charged func(payment.Charge)
}

func (p *countingProcessor) Charge(ctx context.Context, c payment.Charge) (payment.Authorization, error) {
	p.calls.Add(1)
	time.Sleep(p.delay)
	auth, err := p.Simulated.Charge(ctx, c)
	if p.charged != nil {
		p.charged(c)
	}
	return auth, err
}

// clock is the real time moved forward by Advance, so tests can step past backoffs
// without sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())).UTC() }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

type env struct {
	t      *testing.T
	app    *fiber.App
	svc    *payment.Service
	store  *store.Store
	dbPath string
	orders *fakeOrders
	proc   *countingProcessor
	relay  *outbox.Relay
	clock  *clock
	logs   *testkit.Logs
	tokens map[caller]string
}

type envConfig struct {
	orderTimeout time.Duration
}

// newEnv builds the service around a fresh database and a fresh fake order service.
func newEnv(t *testing.T, iss *testkit.Issuer, toks map[caller]string, opts ...func(*envConfig)) *env {
	t.Helper()
	cfg := envConfig{orderTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	logs := &testkit.Logs{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dbPath := filepath.Join(t.TempDir(), "payment.db")
	st, err := store.Open(t.Context(), store.Options{Driver: store.DriverSQLite, DSN: dbPath, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// As in production: tokens addressed to the payment service itself verify too, so the
	// route policies answer a service token with 403.
	verifier, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"payment-service"}})
	if err != nil {
		t.Fatal(err)
	}
	fo := newFakeOrders(t, iss)
	client, err := orders.New(fo.srv.URL, cfg.orderTimeout, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	relay := outbox.New(st, fo.sender(t), outbox.Options{Logger: log, Now: clk.Now, MinBackoff: time.Second, MaxBackoff: time.Minute})
	proc := &countingProcessor{Simulated: processor.New()}
	svc := payment.NewService(payment.Deps{Store: st, Orders: client, Processor: proc, Notifier: relay, Logger: log, Now: clk.Now})
	app := httpapi.New(httpapi.Options{Service: svc, Authenticate: verifier.Middleware(log), Logger: log})
	return &env{t: t, app: app, svc: svc, store: st, dbPath: dbPath, orders: fo, proc: proc, relay: relay, clock: clk, logs: logs, tokens: toks}
}

// with returns e reporting to t, for calls made inside a subtest.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// response is what a test call returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("body is not a JSON array: %v\n%s", err, r.body)
	}
	return l
}

// problem decodes a problem+json answer, failing if it is not one.
func (r response) problem(t *testing.T) problem.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("status %d with content type %q, want %s: %s", r.status, ct, problem.ContentType, r.body)
	}
	var p problem.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status {
		t.Fatalf("not a problem of status %d: %v %s", r.status, err, r.body)
	}
	return p
}

// req describes a call; body is sent as is when it is a string, as JSON otherwise.
type req struct {
	method, path string
	as           caller
	token        string // overrides as
	body         any
	key          string // Idempotency-Key
	header       map[string]string
}

func (e *env) call(r req) response {
	e.t.Helper()
	var body io.Reader
	var raw []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if raw != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	token := r.token
	if token == "" {
		token = e.tokens[r.as]
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	if r.key != "" {
		hr.Header.Set(httpapi.HeaderIdempotencyKey, r.key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := e.app.Test(hr, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	res := response{status: resp.StatusCode, header: resp.Header, body: out}
	checkAgainstSpec(e.t, hr, res)
	return res
}

// charge charges order as caller with card number (and sensible expiry and CVC).
func (e *env) charge(as caller, order, number, key string) response {
	e.t.Helper()
	return e.call(req{method: "POST", path: "/api/payments", as: as, key: key, body: chargeJSON(order, number)})
}

func chargeJSON(order, number string) map[string]any {
	cvc := "123"
	if strings.HasPrefix(number, "37") {
		cvc = "1234"
	}
	return map[string]any{"orderId": order, "card": map[string]any{
		"number": number, "expMonth": 12, "expYear": time.Now().Year() + 3, "cvc": cvc, "holder": "Alice Example"}}
}

// paid charges a new pending order of alice's for amount and returns the payment id.
func (e *env) paid(amount int64) (paymentID, orderID string) {
	e.t.Helper()
	orderID = e.orders.add(aliceSub, "pending", amount)
	r := e.charge(owner, orderID, processor.CardApproved, uuid.NewString())
	if r.status != http.StatusCreated {
		e.t.Fatalf("set-up charge: %d %s", r.status, r.body)
	}
	return r.json(e.t)["id"].(string), orderID
}

func (e *env) payment(id string) payment.Payment {
	e.t.Helper()
	p, err := e.store.Payment(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// dump renders every row of every table of the service's database, to compare the whole
// store before and after a request.
func (e *env) dump() string {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `" ORDER BY 1`)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&out, "== %s %v\n", table, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, "%v|", v)
			}
			out.WriteString("\n")
		}
		rows.Close()
	}
	return out.String()
}

// rawDatabase is the database's files as bytes, WAL included.
func (e *env) rawDatabase() []byte {
	var all []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err == nil {
			all = append(all, b...)
		}
	}
	return all
}

// fakeOrders plays the order service: it verifies tokens like the real one, shows an order
// to its owner or an ADMIN only (404 otherwise), and records the notices that reach its
// internal listener with the payment service's own token. (Its internal side is plain TLS:
// the mutual TLS of the real internal listener is tested with the app's wiring.)
type fakeOrders struct {
	t        *testing.T
	srv      *httptest.Server
	internal *httptest.Server
	iss      *testkit.Issuer
	verifier *authn.Verifier

	mu      sync.Mutex
	orders  map[string]fakeOrder
	fail    int           // when non-zero, every call is answered with this status
	body    string        // when set, GET answers 200 with this body
	delay   time.Duration // answer this late
	gets    []http.Header // headers of the order reads
	notices []notice      // notices acknowledged
	answers []int         // statuses for the next notices, then 200
}

type fakeOrder struct {
	UserID   string
	Status   string
	Amount   int64
	Currency string
}

type notice struct {
	kind    string // paid or refunded
	orderID string
	header  http.Header
	body    map[string]any
}

func newFakeOrders(t *testing.T, iss *testkit.Issuer) *fakeOrders {
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, ExtraAudiences: []string{"order-service"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOrders{t: t, iss: iss, verifier: v, orders: map[string]fakeOrder{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/orders/{id}", f.get)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	internal := http.NewServeMux()
	internal.HandleFunc("POST /internal/orders/{id}/{kind}", f.notice)
	f.internal = httptest.NewTLSServer(internal)
	t.Cleanup(f.internal.Close)
	return f
}

// sender is the relay's sender to the fake's internal side, with the payment service's
// client-credentials token.
func (f *fakeOrders) sender(t *testing.T) *orders.Notices {
	token := f.iss.Token(t, f.iss.Service("payment-service", "order-service", "SERVICE"))
	client := f.internal.Client()
	client.Transport = &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: client.Transport}
	s, err := orders.NewNotices(f.internal.URL, client)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fakeOrders) add(user, status string, amount int64) string {
	id := uuid.NewString()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orders[id] = fakeOrder{UserID: user, Status: status, Amount: amount, Currency: "EUR"}
	return id
}

func (f *fakeOrders) set(fn func(f *fakeOrders)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeOrders) principal(w http.ResponseWriter, r *http.Request) (*authn.Principal, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		http.Error(w, "no token", http.StatusUnauthorized)
		return nil, false
	}
	p, err := f.verifier.Verify(r.Context(), token)
	if err != nil {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return nil, false
	}
	return p, true
}

// preamble applies the configured delay and failure; it reports whether to go on.
func (f *fakeOrders) preamble(w http.ResponseWriter) (string, bool) {
	f.mu.Lock()
	delay, fail, body := f.delay, f.fail, f.body
	f.mu.Unlock()
	time.Sleep(delay)
	if fail != 0 {
		http.Error(w, "unavailable", fail)
		return "", false
	}
	return body, true
}

func (f *fakeOrders) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.gets = append(f.gets, r.Header.Clone())
	f.mu.Unlock()
	body, ok := f.preamble(w)
	if !ok {
		return
	}
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
		return
	}
	p, ok := f.principal(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	o, found := f.orders[r.PathValue("id")]
	f.mu.Unlock()
	if !found || (o.UserID != p.Subject && !p.HasRole("ADMIN")) {
		http.Error(w, "no such order", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": r.PathValue("id"), "userId": o.UserID, "customer": "someone", "status": o.Status,
		"items": []any{}, "total": map[string]any{"amount": o.Amount, "currency": o.Currency},
		"refunded": map[string]any{"amount": 0, "currency": o.Currency},
	})
}

func (f *fakeOrders) notice(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.preamble(w); !ok {
		return
	}
	p, ok := f.principal(w, r)
	if !ok {
		return
	}
	if kind := r.PathValue("kind"); (kind != "paid" && kind != "refunded") || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if !p.HasRole("SERVICE") || p.ClientID != "payment-service" {
		http.Error(w, "the payment service only", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	status := http.StatusOK
	if len(f.answers) > 0 {
		status, f.answers = f.answers[0], f.answers[1:]
	}
	if status/100 == 2 || status == http.StatusConflict {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.notices = append(f.notices, notice{kind: r.PathValue("kind"), orderID: r.PathValue("id"), header: r.Header.Clone(), body: body})
	}
	w.WriteHeader(status)
}

func (f *fakeOrders) received() []notice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]notice(nil), f.notices...)
}

func (f *fakeOrders) reads() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.gets...)
}

// The OpenAPI document, loaded once; its servers are dropped so that test requests (to
// example.com) match its paths.
var spec = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		return nil, err
	}
	doc.Servers = nil
	return legacy.NewRouter(doc)
})

// checkAgainstSpec fails the test if an answer of an API route is not what the OpenAPI
// document says: an undocumented status, a body that does not match its schema.
func checkAgainstSpec(t *testing.T, hr *http.Request, res response) {
	t.Helper()
	if !strings.HasPrefix(hr.URL.Path, "/api/") || res.status == http.StatusMethodNotAllowed {
		return
	}
	router, err := spec()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	route, params, err := router.FindRoute(hr)
	if err != nil {
		if res.status != http.StatusNotFound {
			t.Errorf("%s %s answered %d but is not in api/openapi.yaml", hr.Method, hr.URL.Path, res.status)
		}
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route},
		Status:                 res.status,
		Header:                 res.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	input.SetBodyBytes(res.body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %s answered %d, which api/openapi.yaml does not describe: %v\n%s", hr.Method, hr.URL.Path, res.status, err, res.body)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receivedOf returns the notices of one kind (paid, refunded) the fake acknowledged.
func (f *fakeOrders) receivedOf(kind string) []notice {
	var out []notice
	for _, n := range f.received() {
		if n.kind == kind {
			out = append(out, n)
		}
	}
	return out
}
