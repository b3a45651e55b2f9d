package app_test

import (
	"context"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/app"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestConfigProblems: every mistake is reported at once, by variable name.
func TestConfigProblems(t *testing.T) {
	err := app.Run(context.Background(), env(map[string]string{
		"WEBAPP_PUBLIC_URL":   "https://shop.example.com/app",
		"OIDC_DISCOVERY_URL":  "keycloak:8080",
		"WEBAPP_SESSION_IDLE": "2h",
		"WEBAPP_SESSION_MAX":  "1h",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"OIDC_ISSUER is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	err = app.Run(context.Background(), env(map[string]string{
		"OIDC_ISSUER":         "http://localhost:8180/realms/shop",
		"WEBAPP_PUBLIC_URL":   "https://shop.example.com/app",
		"OIDC_DISCOVERY_URL":  "keycloak:8080",
		"WEBAPP_SESSION_IDLE": "2h",
		"WEBAPP_SESSION_MAX":  "1h",
	}))
	for _, want := range []string{"WEBAPP_PUBLIC_URL", "OIDC_DISCOVERY_URL", "WEBAPP_SESSION_MAX", "WEBAPP_CLIENT_KEY_FILE is required when serving over https"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := app.Config{PublicURL: "http://localhost:8080", Issuer: "http://localhost:8180/realms/shop", GatewayURL: "http://localhost:8000",
		SessionIdle: 1, SessionMax: 1, GatewayTimeout: 1}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("the local defaults are refused: %v", errs)
	}
	if c.Secure() {
		t.Fatal("http counted as secure")
	}
	c.PublicURL, c.ClientKeyFile = "https://shop.example.com", "/run/secrets/webapp-client-key.pem"
	if errs := c.Validate(); len(errs) != 0 || !c.Secure() {
		t.Fatalf("https: %v", errs)
	}
}

func TestRedisUnreachable(t *testing.T) {
	err := app.Run(context.Background(), env(map[string]string{
		"OIDC_ISSUER": "http://localhost:8180/realms/shop", "WEBAPP_REDIS_URL": "redis://127.0.0.1:1/0", "WEBAPP_ADDR": "127.0.0.1:0",
	}))
	if err == nil || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("err %v", err)
	}
}
