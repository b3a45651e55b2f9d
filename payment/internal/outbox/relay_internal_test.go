package outbox

import (
	"testing"
	"time"
)

// TestBackoffDoublesUpToTheCap: the wait after n failures lies in [d/2, d] for
// d = min(MinBackoff * 2^(n-1), MaxBackoff).
func TestBackoffDoublesUpToTheCap(t *testing.T) {
	r := New(nil, nil, Options{MinBackoff: time.Second, MaxBackoff: time.Minute})
	for attempts := 1; attempts <= 30; attempts++ {
		d := time.Second << min(attempts-1, 10)
		d = min(d, time.Minute)
		for range 50 {
			if got := r.backoff(attempts); got < d/2 || got > d {
				t.Fatalf("attempt %d: waited %s, want %s..%s", attempts, got, d/2, d)
			}
		}
	}
}
