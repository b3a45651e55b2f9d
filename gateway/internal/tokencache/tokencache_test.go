package tokencache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/platform/testkit"

	"example.com/shop/gateway/internal/tokencache"
)

type keys struct{ gen atomic.Uint64 }

func (k *keys) KeysGeneration() uint64 { return k.gen.Load() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func principal(exp time.Time) *authn.Principal {
	return &authn.Principal{Subject: "u-1", Roles: []string{"USER"}, Expiry: exp}
}

func TestEntryLivesUntilExpOnly(t *testing.T) {
	k := &keys{}
	now := time.Unix(1_700_000_000, 0)
	c := &clock{t: now}
	cache := tokencache.New(k, 10, c.now)
	exp := now.Add(5 * time.Minute)
	cache.Store([]byte("tok"), cache.Generation(), principal(exp))
	if p, ok := cache.Lookup([]byte("tok")); !ok || p.Subject != "u-1" {
		t.Fatal("a stored token missed")
	}
	if _, ok := cache.Lookup([]byte("tok2")); ok {
		t.Fatal("another token hit")
	}
	if _, ok := cache.Lookup([]byte("to")); ok {
		t.Fatal("a prefix of the token hit")
	}
	c.set(exp.Add(-time.Second))
	if _, ok := cache.Lookup([]byte("tok")); !ok {
		t.Fatal("missed a second before exp")
	}
	c.set(exp)
	if _, ok := cache.Lookup([]byte("tok")); ok {
		t.Fatal("hit at exp: the cache must not extend a token's life, not even by the verifier's leeway")
	}
	cache.Store([]byte("late"), cache.Generation(), principal(exp.Add(-time.Second)))
	if cache.Len() != 1 {
		t.Fatal("an already expired token was stored")
	}
}

func TestKeyChangeDropsEverything(t *testing.T) {
	k := &keys{}
	now := time.Unix(1_700_000_000, 0)
	cache := tokencache.New(k, 10, func() time.Time { return now })
	cache.Store([]byte("a"), cache.Generation(), principal(now.Add(time.Minute)))
	// Verified under generation 0 while the keys changed: must never be served.
	gen := cache.Generation()
	k.gen.Add(1)
	cache.Store([]byte("b"), gen, principal(now.Add(time.Minute)))
	if _, ok := cache.Lookup([]byte("a")); ok {
		t.Fatal("an entry survived a key change")
	}
	if _, ok := cache.Lookup([]byte("b")); ok {
		t.Fatal("an entry verified under the old keys was served")
	}
	if cache.Len() != 0 {
		t.Fatalf("%d entries left after the key change", cache.Len())
	}
}

func TestBoundedSize(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cache := tokencache.New(&keys{}, 100, func() time.Time { return now })
	for i := range 1000 {
		cache.Store([]byte(fmt.Sprint("tok-", i)), 0, principal(now.Add(time.Minute)))
	}
	if cache.Len() != 100 {
		t.Fatalf("%d entries, want the bound 100", cache.Len())
	}
	if _, ok := cache.Lookup([]byte("tok-999")); !ok {
		t.Fatal("the most recent entry was evicted")
	}
	if _, ok := cache.Lookup([]byte("tok-0")); ok {
		t.Fatal("the oldest entry was kept")
	}
}

// TestMiddleware runs the cache around the real verifier: a good token is verified once,
// then served from the cache; a bad token is refused each time exactly as without it.
func TestMiddleware(t *testing.T) {
	iss := testkit.NewIssuer(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience, MinKeyRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Fetch the keys first: the first fetch itself moves the key generation, so the very
	// first token verified on a cold gateway is verified twice.
	if err := v.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	cache := tokencache.New(v, 0, nil)
	var verified atomic.Int64
	verify := v.Middleware(log)
	counting := func(c *fiber.Ctx) error { verified.Add(1); return verify(c) }
	lookup, store := cache.Middleware(counting)
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(log, nil)})
	app.Get("/me", lookup, store, func(c *fiber.Ctx) error {
		p, _ := authn.PrincipalFrom(c)
		return c.SendString(p.Subject)
	})
	call := func(token string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/me", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + string(b)
	}

	good := iss.Token(t, iss.User("u-1", "alice", "USER"))
	for range 3 {
		if status, body := call(good); status != 200 || body != "u-1" {
			t.Fatalf("good token: %d %s", status, body)
		}
	}
	if verified.Load() != 1 {
		t.Fatalf("the good token was verified %d times, want once", verified.Load())
	}

	expired := iss.Token(t, iss.User("u-1", "alice", "USER").With(testkit.Claims{"exp": time.Now().Add(-time.Hour).Unix()}))
	for range 2 {
		if status, body := call(expired); status != 401 || body == "" {
			t.Fatalf("expired token: %d %s", status, body)
		}
	}
	if status, _ := call(""); status != 401 {
		t.Fatalf("no token: %d", status)
	}
	if cache.Len() != 1 {
		t.Fatalf("%d entries; refused tokens must not be stored", cache.Len())
	}

	// Key rotation: the next unknown kid makes the verifier refetch, the generation moves
	// and the cached token is verified again.
	iss.RotateKey(t)
	time.Sleep(2 * time.Millisecond)
	if status, _ := call(iss.Token(t, iss.User("u-2", "bob", "USER"))); status != 200 {
		t.Fatalf("token under the new key: %d", status)
	}
	before := verified.Load()
	if status, _ := call(good); status != 200 {
		t.Fatalf("old token after rotation: %d", status)
	}
	if verified.Load() != before+1 {
		t.Fatal("a cached token was served across a key change without being verified again")
	}
}

// TestAmbiguousRequestsNeverHit: with alice's token cached, a request that sends it as the
// first of two Authorization headers, or beside an access_token in the query, is refused
// with 400 by the lookup itself: a hit on the first header would skip the verifier that
// refuses such requests.
func TestAmbiguousRequestsNeverHit(t *testing.T) {
	iss := testkit.NewIssuer(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := authn.NewVerifier(authn.Config{Issuer: iss.URL, Audience: testkit.Audience})
	if err != nil {
		t.Fatal(err)
	}
	// Keys first, so that the warm-up entry is stored under the generation that lasts.
	if err := v.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	cache := tokencache.New(v, 0, nil)
	var verified, served atomic.Int64
	verify := v.Middleware(log)
	lookup, store := cache.Middleware(func(c *fiber.Ctx) error { verified.Add(1); return verify(c) })
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(log, nil)})
	app.Get("/me", lookup, store, func(c *fiber.Ctx) error {
		served.Add(1)
		p, _ := authn.PrincipalFrom(c)
		return c.SendString(p.Subject)
	})
	alice := "Bearer " + iss.Token(t, iss.User("u-1", "alice", "USER"))
	send := func(target string, authorization ...string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header["Authorization"] = authorization
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := send("/me", alice); resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	if resp := send("/me", alice); resp.StatusCode != http.StatusOK || verified.Load() != 1 {
		t.Fatalf("a second plain request: %d, verified %d times; want a cache hit", resp.StatusCode, verified.Load())
	}
	warm := served.Load()
	for name, resp := range map[string]*http.Response{
		"cached token, then Basic":     send("/me", alice, "Basic YWxpY2U6c2VjcmV0"),
		"cached token, then garbage":   send("/me", alice, "garbage"),
		"cached token and a query one": send("/me?access_token=x", alice),
		"cached token twice":           send("/me", alice, alice),
	} {
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("%s: %d %q, want 400 invalid_request", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := served.Load() - warm; n != 0 {
		t.Fatalf("ambiguous requests were served %d times", n)
	}
	if verified.Load() != 1 {
		t.Fatalf("verified %d times; ambiguous requests must be refused before any lookup or verification", verified.Load())
	}
}
