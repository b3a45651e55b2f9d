package recovery_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"example.com/shop/payment/internal/recovery"
)

type counting struct {
	calls atomic.Int64
	fail  bool
}

func (c *counting) Recover(context.Context, int) (int, error) {
	c.calls.Add(1)
	if c.fail {
		return 0, errors.New("database is down")
	}
	return 0, nil
}

// TestRunRecoversAtStartAndOnEveryTickUntilStopped: a first run at once, more on the
// timer, errors do not end the loop, and the loop ends with its context.
func TestRunRecoversAtStartAndOnEveryTickUntilStopped(t *testing.T) {
	r := &counting{fail: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		recovery.Run(ctx, r, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for r.calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs in 5 s at a 10 ms interval", r.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
