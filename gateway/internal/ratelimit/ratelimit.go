// Package ratelimit is the gateway's token-bucket rate limiter: per caller (the token's
// subject, or the client address when anonymous), per policy, in memory for one replica
// or in Redis so that every replica draws from one budget.
//
// A bucket holds up to Burst tokens and refills at Rate per second; each request takes
// one. Over the limit the gateway answers 429 with Retry-After and the RateLimit and
// RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers, on which every answer
// reports the caller's remaining budget.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// Policy is a named bucket shape.
type Policy struct {
	// Name identifies the budget: callers have one bucket per policy.
	Name string
	// Rate is the refill in requests per second; Burst the bucket size.
	Rate  float64
	Burst int
}

// Validate reports a policy that could never admit a request or would never refill.
func (p Policy) Validate() error {
	if p.Name == "" || p.Rate <= 0 || math.IsInf(p.Rate, 0) || math.IsNaN(p.Rate) || p.Burst < 1 {
		return fmt.Errorf("rate limit policy %q: name, a positive rate and a burst of at least 1 are required", p.Name)
	}
	return nil
}

// Result is the outcome of taking one token.
type Result struct {
	Allowed bool
	// Remaining is the whole tokens left after this request.
	Remaining int
	// RetryAfter is how long until a token is available; zero when allowed.
	RetryAfter time.Duration
	// Full is how long until the bucket is full again.
	Full time.Duration
}

// Limiter takes a token from the bucket of key under policy p.
type Limiter interface {
	Take(ctx context.Context, p Policy, key string) (Result, error)
}

// result builds a Result from the tokens left in a bucket after the attempt.
func result(p Policy, allowed bool, tokens float64) Result {
	r := Result{Allowed: allowed, Remaining: int(math.Floor(tokens))}
	if !allowed {
		r.RetryAfter = seconds((1 - tokens) / p.Rate)
	}
	r.Full = seconds((float64(p.Burst) - tokens) / p.Rate)
	return r
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// Middleware takes a token for every request; key names the caller. Over the limit it
// answers 429 problem+json; either way it sets RateLimit-Policy and RateLimit. If the
// limiter fails, the request goes on: the Redis limiter already falls back to local
// buckets, so an error here means even that failed, and refusing every caller would turn
// a limiter fault into an outage.
func Middleware(l Limiter, p Policy, key func(*fiber.Ctx) string) fiber.Handler {
	policyHeader := fmt.Sprintf("%q;q=%d;w=%d", p.Name, p.Burst, ceilSeconds(seconds(float64(p.Burst)/p.Rate)))
	return func(c *fiber.Ctx) error {
		res, err := l.Take(c.UserContext(), p, key(c))
		if err != nil {
			return c.Next()
		}
		c.Set("RateLimit-Policy", policyHeader)
		c.Set("RateLimit", strconv.Quote(p.Name)+";r="+strconv.Itoa(res.Remaining)+";t="+strconv.Itoa(ceilSeconds(res.Full)))
		if !res.Allowed {
			pr := problem.New(http.StatusTooManyRequests, "too many requests; slow down")
			pr.RetryAfter = max(1, ceilSeconds(res.RetryAfter))
			return pr
		}
		return c.Next()
	}
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// IPKey is the bucket key of an anonymous client. IPv6 clients are keyed by their /64:
// one subscriber usually holds a whole /64, and per-address buckets would give them
// billions of budgets.
func IPKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

// SubjectKey is the bucket key of an authenticated caller.
func SubjectKey(subject string) string { return "sub:" + subject }
