package main

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"time"
)

// service describes one process of the local stack. Commands are relative to the repo root;
// the service binaries come from `make build` (bin/).
type service struct {
	name         string
	command      []string
	env          []string
	url          string
	health       string
	startTimeout time.Duration
}

const issuer = "http://localhost:8180/realms/shop"

// loopback is where every listener of the local stack binds. The order and payment
// services and their internal listeners are meant to be reached through the gateway and by
// each other only: on all interfaces, a client beside the machine would call them directly,
// past the gateway's limits. The web shop, the gateway and Keycloak stay on loopback too:
// the realm's redirect URIs, the issuer and the shop's public URL all name localhost, so
// nobody but a browser on this machine could log in anyway, and what another machine
// could reach is a Keycloak in dev mode with its bootstrap admin/admin.
const loopback = "127.0.0.1"

// listen is the listen address of a port of the local stack.
func listen(port string) string { return net.JoinHostPort(loopback, port) }

// common is the configuration every resource server shares in the local stack.
var common = []string{
	"OIDC_ISSUER=" + issuer,
	"OIDC_AUDIENCE=shop-api",
}

// Service-to-service calls (no user behind them) go to each service's internal listener
// over mutual TLS with the certificates of `make certs` (certs/, made by `make run` when
// missing), and with each service's own client-credentials token. The secrets are the
// realm's dev defaults unless the environment overrides them, as it can for Keycloak's
// import (keycloak/realm/shop-realm.json), so both sides always agree.
var (
	orderSecret   = cmp.Or(os.Getenv("SHOP_ORDER_SERVICE_SECRET"), "order-service-dev-secret")
	paymentSecret = cmp.Or(os.Getenv("SHOP_PAYMENT_SERVICE_SECRET"), "payment-service-dev-secret")
)

// stack lists the processes in start order: Keycloak first, since everything verifies its
// tokens; then the resource servers; then the gateway in front of them; then the web shop.
var stack = []service{
	{
		name:    "keycloak",
		command: []string{"keycloak/run.sh"},
		// Its management interface (health, metrics on 9180) inherits the host.
		env:          []string{"KC_HTTP_HOST=" + loopback},
		url:          "http://localhost:8180/admin (bootstrap admin: admin / admin)",
		health:       issuer + "/.well-known/openid-configuration",
		startTimeout: 5 * time.Minute, // the first run downloads the distribution
	},
	{
		name:    "order",
		command: []string{"bin/order"},
		env: append([]string{
			"ORDER_ADDR=" + listen("8081"),
			"ORDER_DB_DSN=data/order.db",
			"ORDER_PAYMENT_URL=http://localhost:8082",
			"ORDER_INTERNAL_ADDR=" + listen("8444"),
			"ORDER_TLS_CA=certs/ca.pem",
			"ORDER_TLS_CERT=certs/order-service.pem",
			"ORDER_TLS_KEY=certs/order-service-key.pem",
			"ORDER_CLIENT_ID=order-service",
			"ORDER_CLIENT_SECRET=" + orderSecret,
			"ORDER_PAYMENT_INTERNAL_URL=https://localhost:8443",
		}, common...),
		url:          "http://localhost:8081",
		health:       "http://localhost:8081/healthz",
		startTimeout: 30 * time.Second,
	},
	{
		name:    "payment",
		command: []string{"bin/payment"},
		env: append([]string{
			"PAYMENT_ADDR=" + listen("8082"),
			"PAYMENT_DB_DSN=data/payment.db",
			"PAYMENT_ORDER_URL=http://localhost:8081",
			"PAYMENT_INTERNAL_ADDR=" + listen("8443"),
			"PAYMENT_TLS_CA=certs/ca.pem",
			"PAYMENT_TLS_CERT=certs/payment-service.pem",
			"PAYMENT_TLS_KEY=certs/payment-service-key.pem",
			"PAYMENT_CLIENT_ID=payment-service",
			"PAYMENT_CLIENT_SECRET=" + paymentSecret,
			"PAYMENT_ORDER_INTERNAL_URL=https://localhost:8444",
		}, common...),
		url:          "http://localhost:8082",
		health:       "http://localhost:8082/healthz",
		startTimeout: 30 * time.Second,
	},
	{
		name:    "gateway",
		command: []string{"bin/gateway"},
		env: append([]string{
			"GATEWAY_ADDR=" + listen("8000"),
			"GATEWAY_ORDER_URL=http://localhost:8081",
			"GATEWAY_PAYMENT_URL=http://localhost:8082",
		}, common...),
		url:          "http://localhost:8000",
		health:       "http://localhost:8000/healthz",
		startTimeout: 30 * time.Second,
	},
	{
		name:    "webapp",
		command: []string{"bin/webapp"},
		env: append([]string{
			"WEBAPP_ADDR=" + listen("8080"),
			"WEBAPP_PUBLIC_URL=http://localhost:8080",
			"WEBAPP_GATEWAY_URL=http://localhost:8000",
			"WEBAPP_CLIENT_ID=webapp",
			// private_key_jwt: the key `make certs` wrote; the realm reads its public half
			// from http://localhost:8080/.well-known/jwks.json.
			"WEBAPP_CLIENT_KEY_FILE=certs/webapp-client-key.pem",
		}, common...),
		url:          "http://localhost:8080",
		health:       "http://localhost:8080/healthz",
		startTimeout: 30 * time.Second,
	},
}

func printWelcome() {
	fmt.Print(`
The shop is running. Press Ctrl-C to stop everything.

  Web shop          http://localhost:8080
  API gateway       http://localhost:8000   (e.g. curl http://localhost:8000/api/public/products)
  Keycloak account  http://localhost:8180/realms/shop/account
  Keycloak admin    http://localhost:8180/admin   (admin / admin)
  Internal (mTLS)   order https://localhost:8444, payment https://localhost:8443
                    (client certificate from certs/ca.pem and a service token required)

Everything listens on 127.0.0.1 only, so no other machine can reach it. Order (8081) and
payment (8082) are not for browsers or clients: call the API through the gateway.

Demo users (dev-only passwords, see keycloak/README.md):
  alice / alice-dev-pass   shopper
  bob   / bob-dev-pass     shopper
  ada   / ada-dev-pass     admin

Logs: data/logs/<service>.log
`)
}
