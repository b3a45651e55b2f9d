package session_test

import (
	"testing"
	"time"

	"example.com/shop/webapp/internal/session"
)

func TestCart(t *testing.T) {
	var c session.Cart
	if err := c.Add("a", 2); err != nil {
		t.Fatal(err)
	}
	_ = c.Add("a", 9) // capped at the most one order may take
	_ = c.Add("b", 1)
	if c[0].Quantity != session.MaxLineQuantity || c.Count() != 11 {
		t.Fatalf("cart %+v", c)
	}
	for _, q := range []int{0, -1, 11} {
		if err := c.Add("c", q); err != session.ErrBadQuantity {
			t.Errorf("Add(%d): %v", q, err)
		}
	}
	_ = c.Set("a", 0)
	if len(c) != 1 || c[0].ProductID != "b" {
		t.Fatalf("after removal %+v", c)
	}
	var full session.Cart
	for i := range session.MaxCartLines {
		_ = full.Add(string(rune('A'+i)), 1)
	}
	if err := full.Add("one more", 1); err != session.ErrCartFull {
		t.Fatalf("full cart: %v", err)
	}
}

func TestPendingLogins(t *testing.T) {
	var s session.State
	now := time.Now()
	for i := range 7 {
		s.AddLogin(session.PendingLogin{State: string(rune('a' + i)), Started: now})
	}
	if _, ok := s.TakeLogin("a", now); ok {
		t.Error("the oldest login in flight was kept beyond the limit")
	}
	if _, ok := s.TakeLogin("g", now); !ok {
		t.Error("the newest login was lost")
	}
	if _, ok := s.TakeLogin("g", now); ok {
		t.Error("a state was usable twice")
	}
	if _, ok := s.TakeLogin("f", now.Add(11*time.Minute)); ok {
		t.Error("a login older than ten minutes was accepted")
	}
	if _, ok := s.TakeLogin("", now); ok {
		t.Error("an empty state matched")
	}
}
