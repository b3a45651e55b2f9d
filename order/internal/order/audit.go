package order

import (
	"strings"
	"time"
)

// Actions written to the audit log. Every action an admin takes with the power of the
// ADMIN role is one of them, and so is every change made to an order by another service
// rather than by its shopper's request.
const (
	ActionProductCreate = "product.create"
	ActionProductUpdate = "product.update"
	ActionProductRetire = "product.retire"
	ActionOrderDelete   = "order.delete"
	ActionOrderRefund   = "order.refund-recorded"
	// ActionOrderPaymentSettled: an order became paid by an approval its checkout never
	// recorded, on the payment service's notice or by reconciliation.
	ActionOrderPaymentSettled = "order.payment-settled"
	// ActionOrderExpire: the service cancelled an order its shopper did not pay within
	// its payment hold, and put its stock back.
	ActionOrderExpire = "order.expire"
)

// Actions lists every action the audit log records, for the filters that name one.
var Actions = []string{
	ActionProductCreate, ActionProductUpdate, ActionProductRetire,
	ActionOrderDelete, ActionOrderRefund, ActionOrderPaymentSettled, ActionOrderExpire,
}

// AuditEntry is one line of the audit log: who did what to which resource, when, under
// which request id (to find the request in the logs of every service it crossed).
type AuditEntry struct {
	ID            int64
	At            time.Time
	ActorSubject  string
	ActorUsername string
	Action        string
	TargetID      string
	// Details describes the change (e.g. the fields an admin changed, from and to). It
	// never holds credentials or card data.
	Details   map[string]any
	RequestID string
}

// Resource names what the entry is about as kind/id (product/<id>, order/<id>), the shape
// the payment service's audit log uses too.
func (e AuditEntry) Resource() string {
	kind, _, _ := strings.Cut(e.Action, ".")
	return kind + "/" + e.TargetID
}
