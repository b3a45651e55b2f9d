package order_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/validation"
)

// TestShopRulesBoundAnOrder: the shop's own limits, lower than the absolute ones, are what
// an order is held to.
func TestShopRulesBoundAnOrder(t *testing.T) {
	r := order.Rules{MaxLines: 2, MaxQuantity: 3}
	a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if err := order.ValidateLines([]order.Line{{a, 3}, {b, 1}}, r); err != nil {
		t.Fatalf("within the rules: %v", err)
	}
	cases := []struct {
		name  string
		lines []order.Line
		field string
		says  string
	}{
		{"one product too many", []order.Line{{a, 1}, {b, 1}, {c, 1}}, "items", "at most 2 products"},
		{"one unit too many", []order.Line{{a, 4}}, "items[0].quantity", "between 1 and 3"},
	}
	for _, tc := range cases {
		err := order.ValidateLines(tc.lines, r)
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tc.field || !strings.Contains(ve.Fields[0].Message, tc.says) {
			t.Errorf("%s: %v, want %s refused saying %q", tc.name, err, tc.field, tc.says)
		}
	}
}

// TestOverdueAndExpired: only a pending order past its deadline with no charge attempt in
// flight is overdue; an expired order is refused payment with ErrExpired.
func TestOverdueAndExpired(t *testing.T) {
	due := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	pending := order.Order{Status: order.StatusPending, PaymentDueAt: due}
	if pending.Overdue(due.Add(-time.Second)) {
		t.Error("overdue before its deadline")
	}
	if !pending.Overdue(due) || !pending.Overdue(due.Add(time.Hour)) {
		t.Error("not overdue at or after its deadline")
	}
	inFlight := pending
	inFlight.PaymentStartedAt = due.Add(-time.Minute)
	if inFlight.Overdue(due.Add(time.Hour)) {
		t.Error("an order whose charge is in flight is overdue")
	}
	noDeadline := order.Order{Status: order.StatusPending}
	if noDeadline.Overdue(due) {
		t.Error("an order without a deadline is overdue")
	}
	paid := pending
	paid.Status = order.StatusPaid
	if paid.Overdue(due.Add(time.Hour)) {
		t.Error("a paid order is overdue")
	}

	expired := order.Order{Status: order.StatusCancelled, CancelReason: order.CancelExpired}
	if !expired.Expired() || !errors.Is(expired.CheckPayable(), order.ErrExpired) {
		t.Errorf("expired order: Expired %v, CheckPayable %v", expired.Expired(), expired.CheckPayable())
	}
	cancelled := order.Order{Status: order.StatusCancelled, CancelReason: order.CancelRequested}
	if err := cancelled.CheckPayable(); cancelled.Expired() || errors.Is(err, order.ErrExpired) || !errors.Is(err, order.ErrInvalidTransition) {
		t.Errorf("cancelled order: Expired %v, CheckPayable %v", cancelled.Expired(), err)
	}
}

func TestUnpaidLimitErrorSaysWhatToDo(t *testing.T) {
	err := order.UnpaidLimitError(3)
	if !errors.Is(err, order.ErrTooManyUnpaid) || !strings.Contains(err.Error(), "3 unpaid orders") || !strings.Contains(err.Error(), "pay or cancel") {
		t.Fatalf("%v", err)
	}
	if got := order.UnpaidLimitError(1).Error(); !strings.Contains(got, "1 unpaid order,") {
		t.Fatalf("%v", got)
	}
}
