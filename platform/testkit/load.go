package testkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"example.com/shop/platform/server"
)

// LoadOptions shape MixedLoad. Zero values are sensible defaults.
type LoadOptions struct {
	// Clients is how many keep-alive clients send at once; 16 by default.
	Clients int
	// Requests is how many requests each client sends; 60 by default.
	Requests int
	// Header is added to every other request, e.g. a valid bearer token, so that requests
	// get past authentication into the handlers as well as being refused before them.
	Header http.Header
	// Deadline bounds the whole run; 60 s by default.
	Deadline time.Duration
}

// MixedLoad sends app, served at base (ServeLoopback, or a service's own listener), ordinary traffic from many keep-alive
// clients at once: every route of its table, with its own method and with others, with
// parameters filled in several ways, with and without o.Header, with and without a body,
// plus paths no route matches. It is the regression test for a class of bug rather than
// one route: fasthttp reuses a connection's buffers for its next request, so a string taken
// from the request and kept past the handler (a map key, a cache, a label, a goroutine)
// changes under its holder. Run under -race, such a string shows as a data race; without
// it, as a crash ("HashTrieMap: ran out of hash bits") or as garbage metric labels.
//
// Afterwards the service must still answer its health check, no request may have been
// answered 500 or lost its connection, and every series of the request metrics must carry
// a known method, a route of the table and a real status.
func MixedLoad(t testing.TB, base string, app *fiber.App, o LoadOptions) {
	t.Helper()
	if o.Clients == 0 {
		o.Clients = 16
	}
	if o.Requests == 0 {
		o.Requests = 60
	}
	if o.Deadline == 0 {
		o.Deadline = time.Minute
	}
	reqs := mixedRequests(app, o.Header)

	ctx, cancel := context.WithTimeout(context.Background(), o.Deadline)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: o.Clients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}

	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for w := range o.Clients {
		wg.Go(func() {
			for i := range o.Requests {
				if ctx.Err() != nil {
					return
				}
				r := reqs[(w*7+i)%len(reqs)]
				req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
				if err != nil {
					fail("%s %s: %v", r.method, r.path, err)
					return
				}
				for k, vs := range r.header {
					req.Header[k] = vs
				}
				if len(r.body) > 0 {
					req.Header.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
				}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						fail("%s %s: %v", r.method, r.path, err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusInternalServerError {
					fail("%s %s answered 500", r.method, r.path)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("the load did not finish within %s", o.Deadline)
	}
	for _, f := range failures {
		t.Error(f)
	}

	resp, err := client.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the load the service no longer answers /healthz: %v", errOrStatus(err, resp))
	}
	_ = resp.Body.Close()
	checkMetricLabels(t, client, base, app)
}

func errOrStatus(err error, resp *http.Response) any {
	if err != nil {
		return err
	}
	return resp.Status
}

// ServeLoopback serves app as production does (server.Serve) on a loopback port until the
// test ends, and returns its base URL, http://127.0.0.1:<port>.
func ServeLoopback(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, app, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving the app: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type loadRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// paramValues fill a route's :params: a plausible id, a word, a value that must be refused.
var paramValues = []string{"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "x", "%2e%2e", "123456789012345678901234567890"}

func mixedRequests(app *fiber.App, header http.Header) []loadRequest {
	methods := []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions}
	var out []loadRequest
	for i, r := range app.GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Method == fiber.MethodConnect || r.Method == fiber.MethodTrace {
			continue
		}
		for j, v := range paramValues {
			path := fillParams(r.Path, v)
			m := r.Method
			if j == len(paramValues)-1 {
				m = methods[(i+j)%len(methods)] // often not the route's method: 405 or another route
			}
			var body []byte
			if m == fiber.MethodPost || m == fiber.MethodPut || m == fiber.MethodPatch {
				body = []byte(`{"items":[{"product_id":"x","quantity":1}],"amount":1}`)
			}
			req := loadRequest{method: m, path: path, body: body}
			if (i+j)%2 == 0 {
				req.header = header
			}
			out = append(out, req)
		}
	}
	out = append(out,
		loadRequest{method: fiber.MethodGet, path: "/no/such/route/" + strconv.Itoa(len(out))},
		loadRequest{method: fiber.MethodPost, path: "/no-such-route", header: header, body: []byte(`{}`)},
	)
	return out
}

func fillParams(pattern, v string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || p == "*" || strings.HasPrefix(p, "+") {
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}

// checkMetricLabels reads /metrics (served to loopback) and checks every request series.
func checkMetricLabels(t testing.TB, client *http.Client, base string, app *fiber.App) {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid exposition text: %v", err)
	}
	fam := families["http_request_duration_seconds"]
	if fam == nil || len(fam.GetMetric()) == 0 {
		t.Fatal("/metrics has no http_request_duration_seconds series after the load")
	}
	routes := map[string]bool{"unmatched": true, "refused": true, "/": true}
	// Middleware mounts count: a request no route matches is labelled by the last
	// prefix (app.Use, a group) it went through, a bounded set like the routes.
	for _, r := range app.GetRoutes() {
		routes[r.Path] = true
	}
	methods := append(slices.Clone(fiber.DefaultMethods), "OTHER")
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if !slices.Contains(methods, labels["method"]) {
			t.Errorf("metric series with method label %q", labels["method"])
		}
		if !routes[labels["route"]] {
			t.Errorf("metric series with route label %q, not a route of the table", labels["route"])
		}
		if s, err := strconv.Atoi(labels["status"]); err != nil || s < 100 || s > 599 {
			t.Errorf("metric series with status label %q", labels["status"])
		}
	}
}
