package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"example.com/shop/platform/problem"

	"example.com/shop/gateway/internal/ratelimit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func init() {
	// go-redis logs failed dials itself; the tests that cause them say so.
	redis.SetLogger(nopLogger{})
}

type nopLogger struct{}

func (nopLogger) Printf(context.Context, string, ...any) {}

// clock is a settable time source for the in-memory limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var policy = ratelimit.Policy{Name: "default", Rate: 10, Burst: 3}

// conformance runs the token-bucket contract against a limiter; advance moves its clock.
func conformance(t *testing.T, l ratelimit.Limiter, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	take := func(key string) ratelimit.Result {
		t.Helper()
		r, err := l.Take(ctx, policy, key)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The burst is available at once, then the bucket is empty.
	for i := range policy.Burst {
		r := take("alice")
		if !r.Allowed || r.Remaining != policy.Burst-1-i {
			t.Fatalf("request %d: %+v", i+1, r)
		}
	}
	r := take("alice")
	if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 || r.RetryAfter > 100*time.Millisecond {
		t.Fatalf("over the burst: %+v, want refused with RetryAfter in (0, 100ms]", r)
	}
	if r.Full < 250*time.Millisecond || r.Full > 300*time.Millisecond {
		t.Fatalf("Full %v, want about 300ms (3 tokens at 10/s)", r.Full)
	}
	// Refusals cost nothing: still refused, still the same wait.
	if r2 := take("alice"); r2.Allowed || r2.RetryAfter > r.RetryAfter {
		t.Fatalf("second refusal: %+v", r2)
	}
	// Another caller has a budget of its own.
	if r := take("bob"); !r.Allowed {
		t.Fatalf("bob was limited by alice's requests: %+v", r)
	}
	// Another policy too.
	if r, _ := l.Take(ctx, ratelimit.Policy{Name: "payments", Rate: 1, Burst: 1}, "alice"); !r.Allowed {
		t.Fatalf("the payments budget was used up by the default one: %+v", r)
	}
	// Recovery: after 1/rate one request passes, then the bucket is empty again.
	advance(110 * time.Millisecond)
	if r := take("alice"); !r.Allowed {
		t.Fatalf("after refill: %+v", r)
	}
	if r := take("alice"); r.Allowed {
		t.Fatalf("refill gave more than one token: %+v", r)
	}
	// A long pause refills to the burst, never beyond.
	advance(time.Hour)
	for i := range policy.Burst {
		if r := take("alice"); !r.Allowed {
			t.Fatalf("after a long pause, request %d refused", i+1)
		}
	}
	if r := take("alice"); r.Allowed {
		t.Fatal("the bucket grew beyond its burst")
	}
}

func TestMemory(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	conformance(t, ratelimit.NewMemory(0, c.now), c.add)
}

func TestRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	now := time.Unix(1_700_000_000, 0)
	mr.SetTime(now)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	conformance(t, ratelimit.NewRedis(client, "test:", time.Second, quiet), func(d time.Duration) {
		now = now.Add(d)
		mr.SetTime(now)
	})
	// Idle buckets expire from Redis once they would be full again.
	keys := mr.Keys()
	if len(keys) == 0 || !strings.HasPrefix(keys[0], "test:") {
		t.Fatalf("keys %v", keys)
	}
	if ttl := mr.TTL(keys[0]); ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("bucket TTL %v, want until full plus a second", ttl)
	}
}

// TestRedisSharesOneBudget: two gateway replicas draw from one bucket per caller, also
// when they ask at the same time (the script is atomic).
func TestRedisSharesOneBudget(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.SetTime(time.Unix(1_700_000_000, 0))
	replicas := make([]*ratelimit.Redis, 2)
	for i := range replicas {
		client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		replicas[i] = ratelimit.NewRedis(client, "shared:", time.Second, quiet)
	}
	p := ratelimit.Policy{Name: "default", Rate: 1, Burst: 20}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			r, err := replicas[i%2].Take(context.Background(), p, "sub:alice")
			if err != nil {
				t.Error(err)
			}
			if r.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != int64(p.Burst) {
		t.Fatalf("two replicas admitted %d of 60 requests; one shared burst is %d", allowed.Load(), p.Burst)
	}
}

// TestRedisDownFallsBackToMemory: with Redis gone the limiter still limits, from this
// replica's own buckets, and answers quickly.
func TestRedisDownFallsBackToMemory(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	l := ratelimit.NewRedis(client, "x:", 200*time.Millisecond, quiet)
	mr.Close()
	slow := ratelimit.Policy{Name: "default", Rate: 0.01, Burst: 3}
	start := time.Now()
	var allowed int
	for range 50 {
		r, err := l.Take(context.Background(), slow, "sub:alice")
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != slow.Burst {
		t.Fatalf("with Redis down %d requests passed, want the local burst %d", allowed, slow.Burst)
	}
	// One attempt may wait for Redis; the others must not.
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("50 requests took %v with Redis down", elapsed)
	}
}

func TestMiddlewareHeaders(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.NewMemory(0, c.now)
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(quiet, nil)})
	var reached int
	app.Get("/", ratelimit.Middleware(l, ratelimit.Policy{Name: "default", Rate: 10, Burst: 2}, func(*fiber.Ctx) string { return "k" }),
		func(c *fiber.Ctx) error { reached++; return c.SendStatus(http.StatusNoContent) })
	get := func() *http.Response {
		resp, err := app.Test(httptest.NewRequest(http.MethodGet, "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := get()
	if first.StatusCode != http.StatusNoContent ||
		first.Header.Get("RateLimit-Policy") != `"default";q=2;w=1` ||
		first.Header.Get("RateLimit") != `"default";r=1;t=1` {
		t.Fatalf("first: %d %v", first.StatusCode, first.Header)
	}
	get()
	over := get()
	if over.StatusCode != http.StatusTooManyRequests || over.Header.Get("Retry-After") != "1" ||
		over.Header.Get("RateLimit") != `"default";r=0;t=1` || over.Header.Get("Content-Type") != problem.ContentType {
		t.Fatalf("over the limit: %d %v", over.StatusCode, over.Header)
	}
	if reached != 2 {
		t.Fatalf("the handler ran %d times, want 2", reached)
	}
}

func TestIPKey(t *testing.T) {
	same := []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"}
	if ratelimit.IPKey(netip.MustParseAddr(same[0])) != ratelimit.IPKey(netip.MustParseAddr(same[1])) {
		t.Error("two addresses of one IPv6 /64 got separate buckets")
	}
	if ratelimit.IPKey(netip.MustParseAddr("2001:db8:1:2::1")) == ratelimit.IPKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two IPv6 /64s share a bucket")
	}
	if ratelimit.IPKey(netip.MustParseAddr("::ffff:192.0.2.1")) != ratelimit.IPKey(netip.MustParseAddr("192.0.2.1")) {
		t.Error("an IPv4-mapped address got a bucket of its own")
	}
	if ratelimit.IPKey(netip.MustParseAddr("192.0.2.1")) == ratelimit.IPKey(netip.MustParseAddr("192.0.2.2")) {
		t.Error("two IPv4 addresses share a bucket")
	}
}
