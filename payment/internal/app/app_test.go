package app_test

import (
	"context"
	"strings"
	"testing"

	"example.com/shop/payment/internal/app"
	"example.com/shop/platform/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	var c app.Config
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop"}), &c); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8082" || c.DBDriver != "sqlite" || c.DBDSN != "data/payment.db" || c.Audience != "shop-api" ||
		c.OrderURL != "http://localhost:8081" || c.OrderTimeout.String() != "5s" {
		t.Fatalf("defaults: %+v", c)
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
	}))
	if err == nil {
		t.Fatal("Run accepted a bad configuration")
	}
	for _, want := range []string{"PAYMENT_DB_DRIVER", "PAYMENT_ORDER_URL", "PAYMENT_ORDER_TIMEOUT", "OIDC_DISCOVERY_URL"} {
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
