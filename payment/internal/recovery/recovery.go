// Package recovery runs payment.Service.Recover on a timer for the life of the payment
// service, so a payment left processing by a crash or a lost processor answer is settled
// within about RecoverAfter plus one interval, without anyone asking.
package recovery

import (
	"context"
	"log/slog"
	"time"

	"example.com/shop/payment/internal/payment"
)

// batch bounds one run; what is left waits for the next tick.
const batch = 100

// Recoverer is the part of the payment service the loop drives.
type Recoverer interface {
	Recover(ctx context.Context, limit int) (int, error)
}

// Run calls r.Recover every interval until ctx ends. The first run is at start-up: the
// payments a crash left behind are the ones most likely to be waiting.
func Run(ctx context.Context, r Recoverer, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.Recover(ctx, batch); err != nil && ctx.Err() == nil {
			log.Warn("recovering payments left processing", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var _ Recoverer = (*payment.Service)(nil)
