package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"example.com/shop/payment/internal/app"
	"example.com/shop/platform/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	var c app.Config
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop", "PAYMENT_CLIENT_SECRET": "s3cret"}), &c); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8082" || c.DBDriver != "sqlite" || c.DBDSN != "data/payment.db" || c.Audience != "shop-api" ||
		c.OrderURL != "http://localhost:8081" || c.OrderTimeout.String() != "5s" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.InternalAddr != ":8443" || c.TLSCA != "certs/ca.pem" || c.TLSCert != "certs/payment-service.pem" ||
		c.TLSKey != "certs/payment-service-key.pem" || c.ClientID != "payment-service" || c.TokenURL != "" ||
		c.OrderInternalURL != "https://localhost:8444" || !c.TokenExchange || c.OrderAudience != "order-service" ||
		c.RecoverInterval.String() != "30s" {
		t.Fatalf("internal defaults: %+v", c)
	}
}

// TestTheClientSecretIsRequiredAndMasked: without its secret the service cannot prove who
// it is to the order service, so it does not start; the secret never reaches the log.
func TestTheClientSecretIsRequiredAndMasked(t *testing.T) {
	var c app.Config
	err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop"}), &c)
	if err == nil || !strings.Contains(err.Error(), "PAYMENT_CLIENT_SECRET is required") {
		t.Fatalf("err %v", err)
	}
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "PAYMENT_CLIENT_SECRET": "hunter2"}), &c); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", "config", config.LogValue(&c))
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), `"PAYMENT_CLIENT_SECRET":"***"`) {
		t.Fatalf("log %s", out.String())
	}
}

// TestRunRefusesBadConfigurationAtOnce: every problem is reported together, before
// anything is opened or listened on, and the DSN (a secret) is never echoed.
func TestRunRefusesBadConfigurationAtOnce(t *testing.T) {
	err := app.Run(context.Background(), env(map[string]string{
		"PAYMENT_DB_DRIVER":     "mysql",
		"PAYMENT_DB_DSN":        "postgres://user:hunter2@db/payment",
		"PAYMENT_ORDER_URL":     "localhost:8081",
		"PAYMENT_ORDER_TIMEOUT": "0s",
		"OIDC_DISCOVERY_URL":    "ftp://keycloak",
		"OIDC_ISSUER":           "http://localhost:8180/realms/shop",
		"PAYMENT_CLIENT_SECRET": "s3cret",
		// The internal listener speaks mutual TLS only.
		"PAYMENT_ORDER_INTERNAL_URL": "http://order:8444",
		"PAYMENT_TOKEN_URL":          "keycloak/token",
	}))
	if err == nil {
		t.Fatal("Run accepted a bad configuration")
	}
	for _, want := range []string{"PAYMENT_DB_DRIVER", "PAYMENT_ORDER_URL", "PAYMENT_ORDER_TIMEOUT", "OIDC_DISCOVERY_URL",
		"PAYMENT_ORDER_INTERNAL_URL", "PAYMENT_TOKEN_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the DSN: %v", err)
	}
	if err := app.Run(context.Background(), env(nil)); err == nil || !strings.Contains(err.Error(), "OIDC_ISSUER is required") {
		t.Errorf("missing issuer: %v", err)
	}
}
