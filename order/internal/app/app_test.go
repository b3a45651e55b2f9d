package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/shop/platform/config"
	"example.com/shop/platform/testkit"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaultsAndChecks(t *testing.T) {
	var cfg Config
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop"}), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":8081", DBDriver: "sqlite", DBDSN: "data/order.db",
		OIDCIssuer: "http://localhost:8180/realms/shop", OIDCAudience: "shop-api",
		PaymentURL: "http://localhost:8082", PaymentTimeout: 5 * time.Second,
	}
	if cfg != want {
		t.Fatalf("defaults %+v, want %+v", cfg, want)
	}

	cases := []struct {
		name string
		vars map[string]string
		want []string // each must appear in the error
	}{
		{"nothing set", map[string]string{}, []string{"OIDC_ISSUER is required"}},
		{"every mistake at once", map[string]string{
			"OIDC_ISSUER": "keycloak", "ORDER_DB_DRIVER": "mysql", "ORDER_PAYMENT_URL": "payment:8082", "ORDER_PAYMENT_TIMEOUT": "2m",
		}, []string{"ORDER_DB_DRIVER", "OIDC_ISSUER", "ORDER_PAYMENT_URL", "ORDER_PAYMENT_TIMEOUT"}},
		{"postgres without a DSN", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_DB_DRIVER": "postgres"}, []string{"ORDER_DB_DSN is required"}},
		{"timeout not a duration", map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_PAYMENT_TIMEOUT": "soon"}, []string{"ORDER_PAYMENT_TIMEOUT"}},
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

// TestTheDSNIsMaskedInTheLog: a PostgreSQL DSN carries a password.
func TestTheDSNIsMaskedInTheLog(t *testing.T) {
	var cfg Config
	dsn := "postgres://order:s3cret@db/order"
	if err := config.Load(env(map[string]string{"OIDC_ISSUER": "http://kc/realms/shop", "ORDER_DB_DRIVER": "postgres", "ORDER_DB_DSN": dsn}), &cfg); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", "config", config.LogValue(&cfg))
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), `"ORDER_DB_DSN":"***"`) {
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
	var cfg Config
	if err := config.Load(env(map[string]string{
		"OIDC_ISSUER": iss.URL, "ORDER_DB_DSN": filepath.Join(t.TempDir(), "data", "order.db"),
	}), &cfg); err != nil {
		t.Fatal(err)
	}
	api, closeAll, err := build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
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
}
