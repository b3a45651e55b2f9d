package store_test

import (
	"fmt"
	"slices"
	"testing"

	"example.com/shop/order/internal/order"
	"example.com/shop/order/internal/store"
)

// TestOrderNumbersAreUniqueUnderConcurrentCreates: shoppers ordering at the same moment
// (the case in which UUIDv7 prefixes looked alike) each get their own number, and the
// admin's search by number finds exactly that order.
func TestOrderNumbersAreUniqueUnderConcurrentCreates(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		p := stocked(t, s, 100, 500)
		const shoppers = 12
		orders := make([]order.Order, shoppers)
		errs := race(shoppers, func(i int) error {
			var err error
			orders[i], _, err = s.CreateOrder(ctx, store.NewOrder{UserID: fmt.Sprintf("shopper-%d", i), Lines: []order.Line{{ProductID: p.ID, Quantity: 1}}})
			return err
		})
		numbers := make([]int64, shoppers)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("shopper %d: %v", i, err)
			}
			numbers[i] = orders[i].Number
		}
		slices.Sort(numbers)
		if numbers[0] < 10001 || len(slices.Compact(slices.Clone(numbers))) != shoppers {
			t.Fatalf("numbers %v: want %d distinct numbers from 10001", numbers, shoppers)
		}
		for _, o := range orders {
			if got := stored(t, s, o.ID).Number; got != o.Number {
				t.Fatalf("order %s stored with number %d, created with %d", o.ID, got, o.Number)
			}
			found := must(s.AllOrders(ctx, store.Filter{Number: o.Number}, store.Page{}))
			if len(found) != 1 || found[0].ID != o.ID {
				t.Fatalf("search for number %d found %+v, want order %s only", o.Number, found, o.ID)
			}
		}
		if found := must(s.AllOrders(ctx, store.Filter{Number: numbers[shoppers-1] + 1}, store.Page{})); len(found) != 0 {
			t.Fatalf("search for a number not handed out found %+v", found)
		}
	})
}

// TestOrderNumbersAreNeverReused: a deleted order keeps its number, so the next order
// cannot be confused with it in a shopper's email or an admin's notes.
func TestOrderNumbersAreNeverReused(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		first := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		second := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if _, err := s.DeleteOrder(ctx, second.ID, true); err != nil {
			t.Fatal(err)
		}
		third := create(t, s, "alice", order.Line{ProductID: towel, Quantity: 1})
		if first.Number != 10001 || second.Number <= first.Number || third.Number <= second.Number {
			t.Fatalf("numbers %d, %d, then %d after deleting the second: want increasing from 10001", first.Number, second.Number, third.Number)
		}
	})
}

// TestAuditLogFiltersAndPages: the admin console asks for one action, one actor, and a
// page at a time, newest first.
func TestAuditLogFiltersAndPages(t *testing.T) {
	contract(t, func(t *testing.T, s *store.Store) {
		write := func(actor, action, target string) {
			t.Helper()
			if err := s.Audit(ctx, order.AuditEntry{ActorSubject: actor + "-sub", ActorUsername: actor, Action: action, TargetID: target}); err != nil {
				t.Fatal(err)
			}
		}
		write("ada", order.ActionProductCreate, "p1")
		write("grace", order.ActionProductUpdate, "p1")
		write("ada", order.ActionProductUpdate, "p2")
		write("payment-service", order.ActionOrderRefund, "o1")
		write("ada", order.ActionOrderDelete, "o2")

		targets := func(f store.AuditFilter, p store.Page) []string {
			t.Helper()
			var out []string
			for _, e := range must(s.AuditLog(ctx, f, p)) {
				out = append(out, e.ActorUsername+":"+e.TargetID)
			}
			return out
		}
		for _, c := range []struct {
			name string
			f    store.AuditFilter
			p    store.Page
			want []string
		}{
			{"everything, newest first", store.AuditFilter{}, store.Page{}, []string{"ada:o2", "payment-service:o1", "ada:p2", "grace:p1", "ada:p1"}},
			{"one action", store.AuditFilter{Action: order.ActionProductUpdate}, store.Page{}, []string{"ada:p2", "grace:p1"}},
			{"one actor", store.AuditFilter{Actor: "ada"}, store.Page{}, []string{"ada:o2", "ada:p2", "ada:p1"}},
			{"both", store.AuditFilter{Action: order.ActionProductUpdate, Actor: "ada"}, store.Page{}, []string{"ada:p2"}},
			{"a service account", store.AuditFilter{Actor: "payment-service"}, store.Page{}, []string{"payment-service:o1"}},
			{"second page of two", store.AuditFilter{}, store.Page{Limit: 2, Offset: 2}, []string{"ada:p2", "grace:p1"}},
			{"filtered second page", store.AuditFilter{Actor: "ada"}, store.Page{Limit: 2, Offset: 2}, []string{"ada:p1"}},
			{"past the end", store.AuditFilter{}, store.Page{Limit: 2, Offset: 5}, nil},
			{"no such actor", store.AuditFilter{Actor: "Ada"}, store.Page{}, nil},
		} {
			if got := targets(c.f, c.p); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	})
}
