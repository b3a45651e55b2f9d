package harness

// The shop realm's dev-only credentials, as keycloak/realm/shop-realm.json defines them
// (each overridable there by the same environment variable).
var (
	WebappSecret         = envOr("SHOP_WEBAPP_CLIENT_SECRET", "webapp-dev-secret")
	OrderServiceSecret   = envOr("SHOP_ORDER_SERVICE_SECRET", "order-service-dev-secret")
	PaymentServiceSecret = envOr("SHOP_PAYMENT_SERVICE_SECRET", "payment-service-dev-secret")
)

// User is a demo account of the realm.
type User struct{ Name, Password string }

// Demo users: two shoppers and one admin.
var (
	Alice = User{"alice", envOr("SHOP_ALICE_PASSWORD", "alice-dev-pass")}
	Bob   = User{"bob", envOr("SHOP_BOB_PASSWORD", "bob-dev-pass")}
	Ada   = User{"ada", envOr("SHOP_ADA_PASSWORD", "ada-dev-pass")}
)
