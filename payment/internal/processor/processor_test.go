package processor_test

import (
	"context"
	"errors"
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
	for _, tc := range cases {
		auth, err := processor.Simulated{}.Charge(context.Background(), payment.Charge{
			Reference: "pay-1", Amount: payment.Money{Amount: 1999, Currency: "EUR"},
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
	_, err := processor.Simulated{}.Charge(context.Background(), payment.Charge{
		Amount: payment.Money{Amount: 0, Currency: "EUR"}, Card: payment.Card{Number: processor.CardApproved},
	})
	if !errors.Is(err, payment.ErrProcessor) {
		t.Fatalf("err %v", err)
	}
}
