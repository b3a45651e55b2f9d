package app_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"example.com/shop/platform/config"

	"example.com/shop/gateway/internal/app"
)

func load(env map[string]string) (app.Config, error) {
	var cfg app.Config
	err := config.Load(func(k string) string { return env[k] }, &cfg)
	return cfg, err
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := load(map[string]string{"OIDC_ISSUER": "http://localhost:8180/realms/shop"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8000" || cfg.Audience != "shop-api" || cfg.OrderURL != "http://localhost:8081" ||
		cfg.PaymentURL != "http://localhost:8082" || cfg.RedisURL != "" || cfg.Rate != 10 || cfg.Burst != 20 ||
		cfg.BodyLimit != 1<<20 || cfg.HeaderLimit != 8192 || cfg.UpstreamTimeout != 10*time.Second ||
		cfg.ConnectTimeout != 2*time.Second || !cfg.TokenCache || cfg.TrustedProxies != nil || cfg.AdminAllow != nil {
		t.Fatalf("%+v", cfg)
	}
	if cfg, _ := load(map[string]string{"OIDC_ISSUER": "x", "GATEWAY_TOKEN_CACHE": "false"}); cfg.TokenCache {
		t.Fatal("GATEWAY_TOKEN_CACHE=false left the cache on")
	}
}

// TestConfigReportsEveryProblem: one start-up tells the operator everything that is
// wrong, and never repeats a secret.
func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := load(map[string]string{
		"OIDC_ISSUER":              "http://localhost:8180/realms/shop",
		"GATEWAY_TRUSTED_PROXIES":  "10.0.0.0/8,not-a-cidr",
		"GATEWAY_DENY":             "300.1.1.1",
		"GATEWAY_ADMIN_ALLOW":      "10.0.0.0/33",
		"GATEWAY_CORS_ORIGINS":     "*,https://shop.example/",
		"GATEWAY_ORDER_URL":        "localhost:8081",
		"GATEWAY_PAYMENT_URL":      "http://payment:8082/api",
		"GATEWAY_REDIS_URL":        "postgres://user:hunter2@redis:6379",
		"GATEWAY_RATE":             "0",
		"GATEWAY_BURST":            "0",
		"GATEWAY_BODY_LIMIT":       "0",
		"GATEWAY_HEADER_LIMIT":     "100",
		"GATEWAY_UPSTREAM_TIMEOUT": "1s",
		"GATEWAY_CONNECT_TIMEOUT":  "2s",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"GATEWAY_TRUSTED_PROXIES", "not-a-cidr", "GATEWAY_DENY", "GATEWAY_ADMIN_ALLOW",
		"wildcards", "trailing slash", "GATEWAY_ORDER_URL", "GATEWAY_PAYMENT_URL", "GATEWAY_REDIS_URL", "GATEWAY_RATE",
		"GATEWAY_BURST", "GATEWAY_BODY_LIMIT", "GATEWAY_HEADER_LIMIT", "GATEWAY_CONNECT_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the Redis password:\n%v", err)
	}
	if _, err := load(map[string]string{}); err == nil || !strings.Contains(err.Error(), "OIDC_ISSUER is required") {
		t.Errorf("missing issuer: %v", err)
	}
}

func TestConfigLogMasksRedisPassword(t *testing.T) {
	cfg, err := load(map[string]string{"OIDC_ISSUER": "x", "GATEWAY_REDIS_URL": "redis://:hunter2@redis:6379/0"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", config.LogValue(&cfg))
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), `"GATEWAY_REDIS_URL":"***"`) {
		t.Fatalf("start-up log: %s", buf.String())
	}
}
