package harness

// APITester is the realm's test-only client that gets plain bearer tokens for the API
// through the login form (the webapp client gets DPoP-bound tokens only, by PAR and
// private_key_jwt, which the web shop does itself).
const APITester = "api-tester"

// The shop realm's dev-only credentials, as keycloak/realm/shop-realm.json defines them
// (each overridable there by the same environment variable).
var (
	APITesterSecret      = envOr("SHOP_API_TESTER_SECRET", "api-tester-dev-secret")
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
