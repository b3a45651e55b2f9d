package session

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Memory is the in-process Backend: the default for a single replica and for tests. Expired
// entries are invisible at once and swept every minute.
type Memory struct {
	mu     sync.Mutex
	values map[string]memoryValue
	sets   map[string]memorySet
	now    func() time.Time
	stop   chan struct{}
	once   sync.Once
}

type memoryValue struct {
	val []byte
	exp time.Time // zero: never
}

type memorySet struct {
	members map[string]struct{}
	exp     time.Time
}

// NewMemory returns an empty in-memory backend; Close stops its sweeper.
func NewMemory() *Memory {
	m := &Memory{
		values: map[string]memoryValue{},
		sets:   map[string]memorySet{},
		now:    time.Now,
		stop:   make(chan struct{}),
	}
	go m.sweep(time.Minute)
	return m
}

func (m *Memory) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mu.Lock()
			now := m.now()
			for k, v := range m.values {
				if expired(v.exp, now) {
					delete(m.values, k)
				}
			}
			for k, s := range m.sets {
				if expired(s.exp, now) {
					delete(m.sets, k)
				}
			}
			m.mu.Unlock()
		}
	}
}

func expired(exp, now time.Time) bool { return !exp.IsZero() && !now.Before(exp) }

func (m *Memory) deadline(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return m.now().Add(ttl)
}

// Get implements fiber.Storage: nil, nil for a missing or expired key.
func (m *Memory) Get(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[key]
	if !ok || expired(v.exp, m.now()) {
		return nil, nil
	}
	return slices.Clone(v.val), nil
}

// Set implements fiber.Storage; a ttl of zero keeps the value until deleted.
func (m *Memory) Set(key string, val []byte, ttl time.Duration) error {
	if key == "" {
		return errors.New("session: empty key")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key] = memoryValue{val: slices.Clone(val), exp: m.deadline(ttl)}
	return nil
}

// Delete implements fiber.Storage.
func (m *Memory) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, key)
	delete(m.sets, key)
	return nil
}

// Reset implements fiber.Storage by dropping everything.
func (m *Memory) Reset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values = map[string]memoryValue{}
	m.sets = map[string]memorySet{}
	return nil
}

// Close implements fiber.Storage and stops the sweeper.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.stop) })
	return nil
}

// AddToSet implements Backend.
func (m *Memory) AddToSet(_ context.Context, key, member string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sets[key]
	if !ok || expired(s.exp, m.now()) {
		s = memorySet{members: map[string]struct{}{}}
	}
	s.members[member] = struct{}{}
	if exp := m.deadline(ttl); exp.IsZero() || exp.After(s.exp) {
		s.exp = exp
	}
	m.sets[key] = s
	return nil
}

// Members implements Backend.
func (m *Memory) Members(_ context.Context, key string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sets[key]
	if !ok || expired(s.exp, m.now()) {
		return nil, nil
	}
	out := make([]string, 0, len(s.members))
	for member := range s.members {
		out = append(out, member)
	}
	slices.Sort(out)
	return out, nil
}

// RemoveFromSet implements Backend.
func (m *Memory) RemoveFromSet(_ context.Context, key, member string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sets[key]; ok {
		delete(s.members, member)
		if len(s.members) == 0 {
			delete(m.sets, key)
		}
	}
	return nil
}

// SetIfAbsent implements Backend.
func (m *Memory) SetIfAbsent(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.values[key]; ok && !expired(v.exp, m.now()) {
		return false, nil
	}
	m.values[key] = memoryValue{val: slices.Clone(val), exp: m.deadline(ttl)}
	return true, nil
}

// DeleteIfEqual implements Backend.
func (m *Memory) DeleteIfEqual(_ context.Context, key string, val []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.values[key]; ok && bytes.Equal(v.val, val) {
		delete(m.values, key)
	}
	return nil
}

// Ping implements Backend; memory is always there.
func (m *Memory) Ping(context.Context) error { return nil }
