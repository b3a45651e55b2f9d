// Package processor is the simulated card processor of the shop: it implements
// payment.Processor so the service runs without a payment provider, and a real provider can
// replace it behind the same interface.
//
// It answers by card number, like a provider's test mode:
//
//	4242 4242 4242 4242   Visa        approved
//	5555 5555 5555 4444   Mastercard  approved
//	3782 822463 10005     Amex        approved
//	4000 0000 0000 0002   Visa        declined (card_declined)
//	4000 0000 0000 9995   Visa        declined (insufficient_funds)
//	4000 0000 0000 0119   Visa        processor error
//
// Any other valid card is declined: the simulator fails closed, so a real card number typed
// into a demo shop never looks as if it had been charged.
//
// Like a provider, it remembers the outcome of each charge under its reference (the
// payment id), so the payment service can ask about a charge whose answer it lost. Its
// memory is the process's: after a restart it knows no earlier charge, which is true of the
// simulation, since its charges die with it. It keeps the last Remembered charges.
package processor

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"example.com/shop/payment/internal/payment"
)

// Test card numbers, as documented in the API contract.
const (
	CardApproved          = "4242424242424242"
	CardApprovedMC        = "5555555555554444"
	CardApprovedAmex      = "378282246310005"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessorError    = "4000000000000119"
)

// Remembered is how many charges a Simulated processor can be asked about: at the
// shop's benchmarked rate, far more than are made in the time a payment may wait for
// recovery, in a few MiB.
const Remembered = 100_000

// Simulated is the simulated processor. Use New.
type Simulated struct {
	charges *lru.Cache[string, payment.Authorization]
}

// New returns a simulated processor.
func New() *Simulated {
	charges, _ := lru.New[string, payment.Authorization](Remembered) // errors only for size <= 0
	return &Simulated{charges: charges}
}

// Charge answers by card number; see the package documentation. A charge that fails
// leaves no charge behind, as with a provider that could not process it.
func (s *Simulated) Charge(ctx context.Context, c payment.Charge) (payment.Authorization, error) {
	auth, err := answer(ctx, c)
	if err == nil {
		s.charges.Add(c.Reference, auth)
	}
	return auth, err
}

// Lookup returns what Charge answered under reference.
func (s *Simulated) Lookup(ctx context.Context, reference string) (payment.Authorization, error) {
	if err := ctx.Err(); err != nil {
		return payment.Authorization{}, fmt.Errorf("%w: %v", payment.ErrProcessor, err)
	}
	if auth, ok := s.charges.Get(reference); ok {
		return auth, nil
	}
	return payment.Authorization{}, payment.ErrNoSuchCharge
}

func answer(ctx context.Context, c payment.Charge) (payment.Authorization, error) {
	if err := ctx.Err(); err != nil {
		return payment.Authorization{}, fmt.Errorf("%w: %v", payment.ErrProcessor, err)
	}
	if c.Amount.Amount <= 0 {
		// The service never asks for this; a real provider would refuse it too.
		return payment.Authorization{}, fmt.Errorf("%w: amount must be positive", payment.ErrProcessor)
	}
	switch c.Card.Digits() {
	case CardApproved, CardApprovedMC, CardApprovedAmex:
		return payment.Authorization{Approved: true}, nil
	case CardInsufficientFunds:
		return payment.Authorization{Reason: payment.ReasonInsufficientFunds}, nil
	case CardProcessorError:
		// The error names the reference, never the card.
		return payment.Authorization{}, fmt.Errorf("%w: simulated outage for %s", payment.ErrProcessor, c.Reference)
	default:
		return payment.Authorization{Reason: payment.ReasonCardDeclined}, nil
	}
}
