package harness

import "time"

// The order service's payment hold in the stack (ORDER_PAYMENT_HOLD; 15m by default). Long
// enough for every scenario to pay for what it places, a restart of Keycloak or
// PostgreSQL on the way included (an order whose charge is in flight does not expire
// anyway); short enough for a scenario to watch an unpaid order expire. The expiry job
// looks every ExpiryInterval, so an order expires at most that long after its deadline.
const (
	PaymentHold    = 45 * time.Second
	ExpiryInterval = time.Second
)
