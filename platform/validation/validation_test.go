package validation_test

import (
	"errors"
	"fmt"
	"testing"

	"example.com/shop/platform/validation"
)

func TestFieldsErrIsNilUntilAFieldIsAdded(t *testing.T) {
	var f validation.Fields
	if err := f.Err(); err != nil {
		t.Fatalf("no fields: %v, want nil", err)
	}
	f.Add("items[0].quantity", "must be between 1 and 99")
	f.Add("items[1].productId", "is required")
	err := fmt.Errorf("creating an order: %w", f.Err())

	if !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("%v does not match ErrInvalid", err)
	}
	ve, ok := errors.AsType[*validation.Error](err)
	if !ok || len(ve.Fields) != 2 || ve.Fields[1].Field != "items[1].productId" {
		t.Fatalf("as *Error: %+v", ve)
	}
	want := "the request has invalid values: items[0].quantity: must be between 1 and 99; items[1].productId: is required"
	if ve.Error() != want {
		t.Fatalf("Error() = %q, want %q", ve.Error(), want)
	}
}
