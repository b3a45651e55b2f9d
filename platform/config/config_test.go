package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/shop/platform/config"
)

type cfg struct {
	Addr     string        `env:"T_ADDR" default:":8081"`
	Issuer   string        `env:"T_ISSUER" required:"true"`
	Secret   string        `env:"T_SECRET" secret:"true"`
	Timeout  time.Duration `env:"T_TIMEOUT" default:"5s"`
	Workers  int           `env:"T_WORKERS" default:"4"`
	Debug    bool          `env:"T_DEBUG"`
	Origins  []string      `env:"T_ORIGINS"`
	internal string
}

func (c *cfg) Validate() []error {
	if c.Workers > 64 {
		return []error{errors.New("T_WORKERS must be at most 64")}
	}
	return nil
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaultsAndValues(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c cfg
	err := config.Load(env(map[string]string{
		"T_ISSUER": "http://kc/realms/shop", "T_SECRET_FILE": secretFile, "T_ORIGINS": "http://a, http://b,",
		"T_DEBUG": "true",
	}), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8081" || c.Secret != "s3cret" || c.Timeout != 5*time.Second || c.Workers != 4 || !c.Debug ||
		len(c.Origins) != 2 || c.Origins[1] != "http://b" {
		t.Fatalf("%+v", c)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", config.LogValue(&c))
	if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), "T_SECRET=***") || !strings.Contains(buf.String(), "T_TIMEOUT=5s") {
		t.Fatalf("secret not masked: %s", buf.String())
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	var c cfg
	err := config.Load(env(map[string]string{
		"T_TIMEOUT": "soon", "T_WORKERS": "many", "T_DEBUG": "perhaps",
		"T_SECRET": "x", "T_SECRET_FILE": "/nonexistent",
	}), &c)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"T_ISSUER is required", "T_TIMEOUT", "T_WORKERS", "T_DEBUG", "T_SECRET and T_SECRET_FILE are both set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"x"`) {
		t.Errorf("error shows a secret value: %v", err)
	}
}

func TestLoadRunsValidate(t *testing.T) {
	var c cfg
	err := config.Load(env(map[string]string{"T_ISSUER": "x", "T_WORKERS": "65"}), &c)
	if err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("err = %v", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	p, errs := config.ParsePrefixes([]string{"10.1.2.3/8", "192.0.2.1", "2001:db8::1", " 10.0.0.0/16 "})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128", "10.0.0.0/16"}
	for i, w := range want {
		if p[i].String() != w {
			t.Errorf("entry %d = %s, want %s", i, p[i], w)
		}
	}
	_, errs = config.ParsePrefixes([]string{"10.0.0.0/33", "example.com", "10.0.0.0/8"})
	if len(errs) != 2 {
		t.Fatalf("errors %v, want two", errs)
	}
}

func TestNetworkListsAreParsed(t *testing.T) {
	var cfg struct {
		From []netip.Prefix `env:"FROM" default:"127.0.0.0/8, ::1"`
	}
	if err := config.Load(func(string) string { return "" }, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.From) != 2 || cfg.From[0].String() != "127.0.0.0/8" || cfg.From[1].String() != "::1/128" {
		t.Fatalf("default networks %v", cfg.From)
	}
	err := config.Load(func(k string) string { return map[string]string{"FROM": "10.0.0.0/8,bogus,10.0.0.0/40"}[k] }, &cfg)
	if err == nil || !strings.Contains(err.Error(), "FROM") || !strings.Contains(err.Error(), `"bogus"`) || !strings.Contains(err.Error(), `"10.0.0.0/40"`) {
		t.Fatalf("bad networks: %v, want both named", err)
	}
}
