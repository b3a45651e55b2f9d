// Command checkout is the benchmarks' checkout load generator: C workers, each a shopper
// with their own access token, place an order (POST /api/orders) and pay it
// (POST /api/orders/:id/pay with the approved test card) through the gateway, over and
// over, for a bounded time and a bounded number of checkouts. It prints one JSON summary:
// checkouts per second and the latency distribution of each step and of the whole.
//
// Any answer other than 201 to the order and 200 to the payment counts as an error, and
// the command exits 1 if there was any, after printing the summary.
//
//	checkout -gateway http://127.0.0.1:18090 -tokens tokens-1000.txt -admin-token admin-token.txt \
//	         -workers 16 -duration 20s -max 200000
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	gateway := flag.String("gateway", "http://127.0.0.1:18090", "gateway base URL (loopback)")
	tokensFile := flag.String("tokens", "", "file with one shopper access token per line")
	adminFile := flag.String("admin-token", "", "file with an ADMIN access token (creates the products)")
	products := flag.Int("products", 16, "products to spread the orders over (one stock row each)")
	workers := flag.Int("workers", 16, "concurrent shoppers")
	duration := flag.Duration("duration", 20*time.Second, "measured time")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured time before it")
	maxCheckouts := flag.Int64("max", 200_000, "stop after this many measured checkouts")
	flag.Parse()
	if err := run(*gateway, *tokensFile, *adminFile, *products, *workers, *duration, *warmup, *maxCheckouts); err != nil {
		fmt.Fprintln(os.Stderr, "checkout:", err)
		os.Exit(1)
	}
}

func run(gateway, tokensFile, adminFile string, nProducts, workers int, duration, warmup time.Duration, maxCheckouts int64) error {
	u, err := url.Parse(gateway)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("-gateway %q is not a URL", gateway)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("-gateway %q: the load generator only targets loopback", gateway)
	}
	if workers < 1 || duration <= 0 || duration > 10*time.Minute || maxCheckouts < 1 {
		return errors.New("need workers >= 1, 0 < duration <= 10m, max >= 1")
	}
	tokens, err := readLines(tokensFile)
	if err != nil {
		return err
	}
	admin, err := readLines(adminFile)
	if err != nil {
		return err
	}
	c := &client{base: strings.TrimSuffix(gateway, "/"), http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2, MaxConnsPerHost: workers * 2},
	}}
	run := randomHex(6)

	var productIDs []string
	for i := range nProducts {
		var p struct {
			ID string `json:"id"`
		}
		body := fmt.Sprintf(`{"name":"Bench product %d","description":"made by the checkout benchmark","price":{"amount":%d,"currency":"EUR"},"stock":1000000,"active":true}`, i, 999+100*i)
		if status, err := c.do("POST", "/api/admin/products", admin[0], "", body, &p); err != nil || status != http.StatusCreated {
			return fmt.Errorf("creating product %d: status %d: %v", i, status, err)
		}
		productIDs = append(productIDs, p.ID)
	}

	var (
		measuring atomic.Bool
		done      atomic.Int64
		errCount  atomic.Int64
		mu        sync.Mutex
		samples   []string
		create    = make([][]time.Duration, workers)
		pay       = make([][]time.Duration, workers)
		total     = make([][]time.Duration, workers)
	)
	fail := func(what string, status int, err error, body string) {
		errCount.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(samples) < 5 {
			samples = append(samples, fmt.Sprintf("%s: status %d, err %v, body %.200s", what, status, err, body))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), warmup+duration)
	defer cancel()
	time.AfterFunc(warmup, func() { measuring.Store(true) })
	var start time.Time
	var startOnce sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			token := tokens[w%len(tokens)]
			for n := 0; ctx.Err() == nil; n++ {
				measured := measuring.Load()
				if measured {
					startOnce.Do(func() { start = time.Now() })
					if done.Load() >= maxCheckouts {
						return
					}
				}
				key := fmt.Sprintf("bench-%s-%d-%d", run, w, n)
				product := productIDs[(w+n)%len(productIDs)]
				t0 := time.Now()
				var o struct {
					ID string `json:"id"`
				}
				status, err := c.do("POST", "/api/orders", token, key,
					fmt.Sprintf(`{"items":[{"productId":%q,"quantity":1}]}`, product), &o)
				t1 := time.Now()
				if err != nil || status != http.StatusCreated || o.ID == "" {
					if ctx.Err() == nil {
						fail("create order", status, err, c.last(err))
					}
					continue
				}
				status, err = c.do("POST", "/api/orders/"+o.ID+"/pay", token, key+"-pay",
					`{"card":{"number":"4242424242424242","expMonth":12,"expYear":`+fmt.Sprint(time.Now().Year()+3)+`,"cvc":"123","holder":"Bench Shopper"}}`, nil)
				t2 := time.Now()
				if err != nil || status != http.StatusOK {
					if ctx.Err() == nil {
						fail("pay order", status, err, c.last(err))
					}
					continue
				}
				if measured {
					done.Add(1)
					create[w] = append(create[w], t1.Sub(t0))
					pay[w] = append(pay[w], t2.Sub(t1))
					total[w] = append(total[w], t2.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if start.IsZero() {
		elapsed = 0
	}

	out := map[string]any{
		"workers": workers, "products": nProducts, "duration_s": elapsed.Seconds(),
		"checkouts": done.Load(), "errors": errCount.Load(), "error_samples": samples,
		"checkouts_per_s": float64(done.Load()) / max(elapsed.Seconds(), 1e-9),
		"total":           summary(total), "create": summary(create), "pay": summary(pay),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if n := errCount.Load(); n > 0 {
		return fmt.Errorf("%d requests failed, e.g. %v", n, samples)
	}
	if done.Load() == 0 {
		return errors.New("no checkout completed")
	}
	return nil
}

// summary is the latency distribution in milliseconds.
func summary(perWorker [][]time.Duration) map[string]float64 {
	all := slices.Concat(perWorker...)
	if len(all) == 0 {
		return map[string]float64{}
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	at := func(q float64) float64 {
		i := min(len(all)-1, int(q*float64(len(all))))
		return ms(all[i])
	}
	return map[string]float64{
		"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": ms(all[len(all)-1]),
		"mean_ms": ms(sum / time.Duration(len(all))),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type client struct {
	base string
	http *http.Client
}

// lastBody keeps the body of a failed answer for the error samples.
type statusErr struct{ body string }

func (e *statusErr) Error() string { return "unexpected answer" }

func (c *client) last(err error) string {
	var se *statusErr
	if errors.As(err, &se) {
		return se.body
	}
	return ""
}

// do sends one JSON request with the bearer token and, when given, an Idempotency-Key,
// and decodes a 2xx answer into out.
func (c *client) do(method, path, token, key, body string, out any) (int, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, &statusErr{body: string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			lines = append(lines, s)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return lines, sc.Err()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
