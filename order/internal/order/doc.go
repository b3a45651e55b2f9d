// Package order is the order service's domain: the catalog's products, orders with their
// lines and totals, the order lifecycle, and the sentinel errors the HTTP layer maps to
// statuses.
//
// It knows nothing of HTTP or databases. The rules that decide money and state live here
// once, so the store applies them inside its transactions and the tests check them without
// a server: prices and totals come from the catalog only, quantities and line counts are
// bounded, and an order moves only along pending -> paid -> refunded or pending -> cancelled.
package order
