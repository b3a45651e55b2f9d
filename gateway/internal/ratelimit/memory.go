package ratelimit

import (
	"context"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Memory keeps buckets in this process, as golang.org/x/time/rate limiters in an LRU of
// bounded size. A bucket evicted for room starts full again, which only a caller with as
// many distinct addresses as the LRU holds could exploit; the bound keeps memory flat
// under a flood of new addresses.
type Memory struct {
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// DefaultBuckets is the number of buckets Memory keeps when not told otherwise.
const DefaultBuckets = 100_000

// NewMemory returns a Memory holding at most size buckets (DefaultBuckets when size <= 0).
// now is the clock; nil means time.Now.
func NewMemory(size int, now func() time.Time) *Memory {
	if size <= 0 {
		size = DefaultBuckets
	}
	if now == nil {
		now = time.Now
	}
	c, _ := lru.New[string, *rate.Limiter](size) // errors only for size <= 0
	return &Memory{buckets: c, now: now}
}

// Take implements Limiter.
func (m *Memory) Take(_ context.Context, p Policy, key string) (Result, error) {
	now := m.now()
	k := p.Name + "|" + key
	lim, ok := m.buckets.Get(k)
	if !ok {
		fresh := rate.NewLimiter(rate.Limit(p.Rate), p.Burst)
		// Two first requests may race here; PeekOrAdd makes both use one bucket.
		if prev, found, _ := m.buckets.PeekOrAdd(k, fresh); found {
			lim = prev
		} else {
			lim = fresh
		}
	}
	r := lim.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		// Refused requests cost nothing: hand the reserved token back.
		r.CancelAt(now)
		return result(p, false, lim.TokensAt(now)), nil
	}
	return result(p, true, lim.TokensAt(now)), nil
}
