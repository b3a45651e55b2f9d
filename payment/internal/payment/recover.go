package payment

import (
	"context"
	"errors"
	"time"
)

// RecoverAfter is how long a payment may stay processing before Recover asks the processor
// about it: well beyond processorTimeout, so the request that made the charge has either
// recorded its outcome or is gone (the service stopped or crashed in between).
const RecoverAfter = processorTimeout + 30*time.Second

// Recover settles up to limit payments left processing for longer than RecoverAfter, from
// the processor's own record of each charge: approved (with the paid notice that makes the
// order paid) or declined as the processor answered, and failed when the charge never
// reached it, which frees the order to be paid again. Without it such a payment would hold
// its order's payment slot forever: no second charge, no paid order.
//
// The store records one outcome per payment, so Recover running on several replicas, or
// beside a request that finishes late, still settles each payment exactly once. A payment
// the processor cannot tell about now is left for the next run. Recover returns how many
// payments it settled.
func (s *Service) Recover(ctx context.Context, limit int) (int, error) {
	stuck, err := s.store.Stuck(ctx, s.timestamp().Add(-RecoverAfter), limit)
	if err != nil {
		return 0, err
	}
	settled := 0
	for _, p := range stuck {
		auth, err := s.processor.Lookup(ctx, p.ID)
		outcome, reason := StatusApproved, Reason("")
		switch {
		case errors.Is(err, ErrNoSuchCharge):
			outcome, reason = StatusFailed, ReasonProcessorError
		case err != nil:
			s.log.Warn("payment left processing: the processor cannot tell its outcome yet", "payment_id", p.ID, "err", err)
			continue
		case !auth.Approved:
			outcome, reason = StatusDeclined, auth.Reason
			if reason == "" {
				reason = ReasonCardDeclined
			}
		}
		switch _, err := s.settle(ctx, p, outcome, reason, ""); {
		case errors.Is(err, ErrNotProcessing):
			continue // settled meanwhile, by its request or another replica
		case err != nil:
			return settled, err
		}
		s.log.Info("recovered a payment left processing", "payment_id", p.ID, "order_id", p.OrderID, "outcome", outcome)
		settled++
	}
	return settled, nil
}
