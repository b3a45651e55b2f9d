package processor_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"example.com/shop/payment/internal/payment"
	"example.com/shop/payment/internal/processor"
)

func TestSimulatedAnswersByTestCard(t *testing.T) {
	cases := []struct {
		number   string
		approved bool
		reason   payment.Reason
		fails    bool
	}{
		{"4242 4242 4242 4242", true, "", false},
		{processor.CardApprovedMC, true, "", false},
		{processor.CardApprovedAmex, true, "", false},
		{processor.CardDeclined, false, payment.ReasonCardDeclined, false},
		{processor.CardInsufficientFunds, false, payment.ReasonInsufficientFunds, false},
		{processor.CardProcessorError, false, "", true},
		{"4111111111111111", false, payment.ReasonCardDeclined, false}, // valid, not a test card
	}
	sim := processor.New()
	for i, tc := range cases {
		auth, err := sim.Charge(context.Background(), payment.Charge{
			Reference: fmt.Sprintf("pay-%d", i), Amount: payment.Money{Amount: 1999, Currency: "EUR"},
			Card: payment.Card{Number: tc.number, ExpMonth: 12, ExpYear: 2099, CVC: "123"},
		})
		if tc.fails {
			if !errors.Is(err, payment.ErrProcessor) {
				t.Errorf("%s: err %v, want ErrProcessor", tc.number, err)
			}
			continue
		}
		if err != nil || auth.Approved != tc.approved || auth.Reason != tc.reason {
			t.Errorf("%s: %+v, %v; want approved=%v reason=%q", tc.number, auth, err, tc.approved, tc.reason)
		}
	}
}

func TestSimulatedRefusesNonPositiveAmounts(t *testing.T) {
	_, err := processor.New().Charge(context.Background(), payment.Charge{
		Amount: payment.Money{Amount: 0, Currency: "EUR"}, Card: payment.Card{Number: processor.CardApproved},
	})
	if !errors.Is(err, payment.ErrProcessor) {
		t.Fatalf("err %v", err)
	}
}

// TestLookupAnswersWhatChargeDid: the outcome of each charge is there to be asked for
// under its reference; a reference never charged, or whose charge failed, has none.
func TestLookupAnswersWhatChargeDid(t *testing.T) {
	ctx := context.Background()
	sim := processor.New()
	charge := func(ref, number string) {
		_, _ = sim.Charge(ctx, payment.Charge{Reference: ref, Amount: payment.Money{Amount: 500, Currency: "EUR"},
			Card: payment.Card{Number: number, ExpMonth: 12, ExpYear: 2099, CVC: "123"}})
	}
	charge("approved", processor.CardApproved)
	charge("declined", processor.CardInsufficientFunds)
	charge("failed", processor.CardProcessorError)

	if auth, err := sim.Lookup(ctx, "approved"); err != nil || !auth.Approved {
		t.Errorf("approved charge: %+v, %v", auth, err)
	}
	if auth, err := sim.Lookup(ctx, "declined"); err != nil || auth.Approved || auth.Reason != payment.ReasonInsufficientFunds {
		t.Errorf("declined charge: %+v, %v", auth, err)
	}
	for _, ref := range []string{"failed", "never-charged"} {
		if _, err := sim.Lookup(ctx, ref); !errors.Is(err, payment.ErrNoSuchCharge) {
			t.Errorf("%s: err %v, want ErrNoSuchCharge", ref, err)
		}
	}
}
