package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/config"
	"example.com/shop/platform/testkit"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaultsAndChecks(t *testing.T) {
	var cfg Config
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop", "ORDER_CLIENT_SECRET": "s3cret"}), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":8081", DBDriver: "sqlite", DBDSN: "data/order.db",
		OIDCIssuer: "http://localhost:8180/realms/shop", OIDCAudience: "shop-api",
		PaymentURL: "http://localhost:8082", PaymentTimeout: 5 * time.Second,
		InternalAddr: ":8444", TLSCA: "certs/ca.pem", TLSCert: "certs/order-service.pem", TLSKey: "certs/order-service-key.pem",
		ClientID: "order-service", ClientSecret: "s3cret", TokenExchange: true, PaymentAudience: "payment-service",
		PaymentInternalURL: "https://localhost:8443",
		ReconcileInterval:  time.Minute, ReconcileGrace: 2 * time.Minute,
		PaymentHold: 15 * time.Minute, ExpiryInterval: 30 * time.Second, MaxUnpaid: 3, MaxLines: 20, MaxQuantity: 10,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults %+v, want %+v", cfg, want)
	}
	if cfg.rules() != order.DefaultRules {
		t.Fatalf("the default rules %+v are not order.DefaultRules %+v", cfg.rules(), order.DefaultRules)
	}

	cases := []struct {
		name string
		vars map[string]string
		want []string // each must appear in the error
	}{
		{"nothing set", map[string]string{}, []string{"OIDC_ISSUER is required", "ORDER_CLIENT_SECRET is required"}},
		{"every mistake at once", map[string]string{
			"OIDC_ISSUER": "keycloak", "ORDER_DB_DRIVER": "mysql", "ORDER_PAYMENT_URL": "payment:8082", "ORDER_PAYMENT_TIMEOUT": "2m",
			"ORDER_CLIENT_SECRET": "s3cret", "ORDER_PAYMENT_INTERNAL_URL": "http://payment:8443", "ORDER_TOKEN_URL": "keycloak/token",
			"ORDER_RECONCILE_GRACE": "1s",
		}, []string{"ORDER_DB_DRIVER", "OIDC_ISSUER", "ORDER_PAYMENT_URL", "ORDER_PAYMENT_TIMEOUT", "ORDER_PAYMENT_INTERNAL_URL",
			"ORDER_TOKEN_URL", "ORDER_RECONCILE_GRACE"}},
		{"order rules out of bounds", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_CLIENT_SECRET": "s3cret",
			"ORDER_PAYMENT_HOLD": "1s", "ORDER_EXPIRY_INTERVAL": "0s", "ORDER_MAX_UNPAID": "0", "ORDER_MAX_LINES": "51", "ORDER_MAX_QUANTITY": "101"},
			[]string{"ORDER_PAYMENT_HOLD", "ORDER_EXPIRY_INTERVAL", "ORDER_MAX_UNPAID", "ORDER_MAX_LINES", "ORDER_MAX_QUANTITY"}},
		{"a hold of more than a day", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_CLIENT_SECRET": "s3cret",
			"ORDER_PAYMENT_HOLD": "25h"}, []string{"ORDER_PAYMENT_HOLD"}},
		{"postgres without a DSN", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_CLIENT_SECRET": "s3cret", "ORDER_DB_DRIVER": "postgres"}, []string{"ORDER_DB_DSN is required"}},
		{"timeout not a duration", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_CLIENT_SECRET": "s3cret", "ORDER_PAYMENT_TIMEOUT": "soon"}, []string{"ORDER_PAYMENT_TIMEOUT"}},
		// A grace shorter than the checkout's wait would second-guess answers on their way.
		{"grace within the payment timeout", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_CLIENT_SECRET": "s3cret",
			"ORDER_PAYMENT_TIMEOUT": "10s", "ORDER_RECONCILE_GRACE": "10s"}, []string{"ORDER_RECONCILE_GRACE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			err := config.Load(env(tc.vars), &cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestSecretsAreMaskedInTheLog: a PostgreSQL DSN carries a password, and the client secret
// is the service's identity at Keycloak.
func TestSecretsAreMaskedInTheLog(t *testing.T) {
	var cfg Config
	dsn := "postgres://order:s3cret@db/order"
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_DB_DRIVER": "postgres", "ORDER_DB_DSN": dsn,
		"ORDER_CLIENT_SECRET": "hunter2"}), &cfg); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", "config", config.LogValue(&cfg))
	if strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), "hunter2") ||
		!strings.Contains(out.String(), `"ORDER_DB_DSN":"***"`) || !strings.Contains(out.String(), `"ORDER_CLIENT_SECRET":"***"`) {
		t.Fatalf("log %s", out.String())
	}
}

func TestRunRefusesABadConfigurationBeforeStarting(t *testing.T) {
	err := Run(context.Background(), env(map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "OIDC_ISSUER") {
		t.Fatalf("err %v", err)
	}
}

// TestBuildWiresAWorkingService: from configuration to a service that is ready, serves the
// seed catalog to anyone and the orders to a verified shopper.
func TestBuildWiresAWorkingService(t *testing.T) {
	iss := testkit.NewIssuer(t)
	files := testkit.NewPKI(t).Files("order-service")
	var cfg Config
	if err := config.Load(env(map[string]string{
		"OIDC_ISSUER": iss.URL, "ORDER_DB_DSN": filepath.Join(t.TempDir(), "data", "order.db"),
		"ORDER_TLS_CA": files.CA, "ORDER_TLS_CERT": files.Cert, "ORDER_TLS_KEY": files.Key, "ORDER_CLIENT_SECRET": "s3cret",
	}), &cfg); err != nil {
		t.Fatal(err)
	}
	svc, err := build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close()
	api := svc.public
	get := func(path, token string) (int, []byte) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := api.App.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if status, body := get("/readyz", ""); status != 200 {
		t.Fatalf("readyz %d %s", status, body)
	}
	status, body := get("/api/public/products", "")
	var products []map[string]any
	if status != 200 || json.Unmarshal(body, &products) != nil || len(products) < 6 {
		t.Fatalf("catalog %d %s", status, body)
	}
	if status, body := get("/api/orders", iss.Token(t, iss.User("alice-sub", "alice", "USER"))); status != 200 || string(body) != "[]" {
		t.Fatalf("my orders %d %s", status, body)
	}
	if status, _ := get("/api/orders", ""); status != 401 {
		t.Fatalf("anonymous orders %d", status)
	}
	// The payment service's token is addressed to this service, so it verifies; a user
	// route then refuses it for what it is.
	if status, body := get("/api/orders", iss.Token(t, iss.Service("payment-service", "order-service", "SERVICE"))); status != 403 {
		t.Fatalf("a service token on a user route: %d %s", status, body)
	}
}
