package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"example.com/shop/webapp/internal/session"
)

// backends are the implementations the contract runs against. miniredis's clock is moved
// by FastForward; memory's TTLs are short real sleeps.
func backends(t *testing.T) map[string]func(t *testing.T) (session.Backend, func(time.Duration)) {
	return map[string]func(t *testing.T) (session.Backend, func(time.Duration)){
		"memory": func(t *testing.T) (session.Backend, func(time.Duration)) {
			m := session.NewMemory()
			t.Cleanup(func() { _ = m.Close() })
			return m, time.Sleep
		},
		"redis": func(t *testing.T) (session.Backend, func(time.Duration)) {
			mr := miniredis.RunT(t)
			r, err := session.NewRedis(context.Background(), "redis://"+mr.Addr()+"/0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			return r, mr.FastForward
		},
	}
}

// TestBackendContract is the one suite every Backend must pass.
func TestBackendContract(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b, wait := open(t)
			if v, err := b.Get("missing"); v != nil || err != nil {
				t.Fatalf("missing key: %q %v", v, err)
			}
			if err := b.Set("k", []byte("v1"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, _ := b.Get("k"); string(v) != "v1" {
				t.Fatalf("got %q", v)
			}
			_ = b.Set("k", []byte("v2"), time.Minute)
			if v, _ := b.Get("k"); string(v) != "v2" {
				t.Fatalf("overwrite: %q", v)
			}
			_ = b.Delete("k")
			if v, _ := b.Get("k"); v != nil {
				t.Fatal("deleted key still there")
			}

			_ = b.Set("short", []byte("x"), 50*time.Millisecond)
			_ = b.Set("forever", []byte("x"), 0)
			ok, err := b.SetIfAbsent(ctx, "once", []byte("1"), 50*time.Millisecond)
			if !ok || err != nil {
				t.Fatalf("first SetIfAbsent: %v %v", ok, err)
			}
			if ok, _ := b.SetIfAbsent(ctx, "once", []byte("2"), time.Minute); ok {
				t.Fatal("second SetIfAbsent stored")
			}
			for _, m := range []string{"b", "a", "a"} {
				if err := b.AddToSet(ctx, "set", m, 50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			members, _ := b.Members(ctx, "set")
			slices.Sort(members)
			if !slices.Equal(members, []string{"a", "b"}) {
				t.Fatalf("members %v", members)
			}
			_ = b.RemoveFromSet(ctx, "set", "a")
			if members, _ := b.Members(ctx, "set"); !slices.Equal(members, []string{"b"}) {
				t.Fatalf("after remove %v", members)
			}

			wait(120 * time.Millisecond)
			if v, _ := b.Get("short"); v != nil {
				t.Error("an expired value is still there")
			}
			if v, _ := b.Get("forever"); v == nil {
				t.Error("a value without TTL expired")
			}
			if members, _ := b.Members(ctx, "set"); len(members) != 0 {
				t.Errorf("an expired set still has %v", members)
			}
			if ok, _ := b.SetIfAbsent(ctx, "once", []byte("3"), time.Minute); !ok {
				t.Error("SetIfAbsent refused after the first value expired")
			}
			if err := b.Ping(ctx); err != nil {
				t.Error(err)
			}

			// Compare-and-delete: a lock is released only by the holder whose token it holds.
			_ = b.Set("lock", []byte("mine"), time.Minute)
			if err := b.DeleteIfEqual(ctx, "lock", []byte("someone else's")); err != nil {
				t.Fatal(err)
			}
			if v, _ := b.Get("lock"); string(v) != "mine" {
				t.Fatalf("DeleteIfEqual with another value deleted the key (now %q)", v)
			}
			if err := b.DeleteIfEqual(ctx, "lock", []byte("mine")); err != nil {
				t.Fatal(err)
			}
			if v, _ := b.Get("lock"); v != nil {
				t.Fatalf("DeleteIfEqual with the held value left %q", v)
			}
			if err := b.DeleteIfEqual(ctx, "never-set", []byte("x")); err != nil {
				t.Errorf("DeleteIfEqual of a missing key: %v", err)
			}
		})
	}
}

func TestRedisResetIsRefused(t *testing.T) {
	mr := miniredis.RunT(t)
	r, err := session.NewRedis(context.Background(), "redis://"+mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mr.Set("gateway:ratelimit:x", "5")
	if err := r.Reset(); err == nil {
		t.Fatal("Reset flushed the shared database")
	}
	if !mr.Exists("gateway:ratelimit:x") {
		t.Fatal("another service's key is gone")
	}
}

func TestNewRedisFailsCleanly(t *testing.T) {
	if _, err := session.NewRedis(context.Background(), "redis://127.0.0.1:1"); err == nil {
		t.Fatal("no error for a Redis that is not there")
	}
	if _, err := session.NewRedis(context.Background(), "not a url"); err == nil {
		t.Fatal("no error for a bad URL")
	}
}
