package dpop

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultMemoryCapacity bounds the ids a Memory cache holds: at a minute's window, a
// thousand requests a second.
const DefaultMemoryCapacity = 60_000

// Memory is a ReplayCache for one process (one gateway replica, or tests). Several
// replicas need a shared one (the gateway's Redis cache).
type Memory struct {
	mu       sync.Mutex
	seen     map[string]time.Time
	capacity int
	now      func() time.Time
	nextScan time.Time
}

// NewMemory returns a cache of at most capacity ids (DefaultMemoryCapacity when <= 0);
// now is the clock, time.Now when nil.
func NewMemory(capacity int, now func() time.Time) *Memory {
	if capacity <= 0 {
		capacity = DefaultMemoryCapacity
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{seen: map[string]time.Time{}, capacity: capacity, now: now}
}

// ErrFull is returned when the cache holds capacity live ids. Evicting one instead would
// let its proof be replayed, so the caller is refused (and retries) rather than let in.
var ErrFull = errors.New("dpop: the replay cache is full")

// FirstUse implements ReplayCache.
func (m *Memory) FirstUse(_ context.Context, id string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if until, ok := m.seen[id]; ok && now.Before(until) {
		return false, nil
	}
	if len(m.seen) >= m.capacity || now.After(m.nextScan) {
		for k, until := range m.seen {
			if !now.Before(until) {
				delete(m.seen, k)
			}
		}
		m.nextScan = now.Add(ttl)
	}
	if len(m.seen) >= m.capacity {
		return false, ErrFull
	}
	m.seen[id] = now.Add(ttl)
	return true, nil
}
