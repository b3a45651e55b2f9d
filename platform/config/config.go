// Package config loads a service's configuration from environment variables into a struct,
// reporting every problem at once, and renders it for the start-up log with secrets masked.
//
// Fields are described by tags:
//
//	type Config struct {
//		Addr     string        `env:"ORDER_ADDR" default:":8081"`
//		DBURL    string        `env:"ORDER_DB_URL" secret:"true"`
//		Issuer   string        `env:"OIDC_ISSUER" required:"true"`
//		Timeout  time.Duration `env:"ORDER_PAYMENT_TIMEOUT" default:"5s"`
//		Origins  []string      `env:"GATEWAY_CORS_ORIGINS"` // comma-separated
//	}
//
// Every variable can also be given as NAME_FILE, the path of a file holding the value, the
// convention of Docker and Kubernetes secrets. A struct may add its own checks with a
// `Validate() []error` method; Load reports those together with its own.
//
// A small loader is written here rather than taken from a library because it takes a
// getenv function (so `run(ctx, getenv)` is testable without touching the process
// environment), supports `_FILE` for every field, and masks secrets in the log from the
// same tags.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Validator is implemented by config structs with checks beyond types and presence.
type Validator interface {
	Validate() []error
}

// Load fills the struct dst points to from getenv. It returns all problems joined.
func Load(getenv func(string) string, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return errors.New("config: Load needs a pointer to a struct")
	}
	var errs []error
	load(getenv, rv.Elem(), &errs)
	if v, ok := dst.(Validator); ok && len(errs) == 0 {
		errs = append(errs, v.Validate()...)
	}
	return errors.Join(errs...)
}

func load(getenv func(string) string, v reflect.Value, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() && f.Tag.Get("env") == "" {
			load(getenv, fv, errs)
			continue
		}
		name := f.Tag.Get("env")
		if name == "" || !f.IsExported() {
			continue
		}
		raw, src, err := lookup(getenv, name)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		if raw == "" {
			raw, src = f.Tag.Get("default"), "default"
		}
		if raw == "" {
			if f.Tag.Get("required") == "true" {
				*errs = append(*errs, fmt.Errorf("%s is required", name))
			}
			continue
		}
		if err := set(fv, raw); err != nil {
			shown := raw
			if f.Tag.Get("secret") == "true" {
				shown = "***"
			}
			*errs = append(*errs, fmt.Errorf("%s (from %s) = %q: %v", name, src, shown, err))
		}
	}
}

// lookup reads NAME, or the file named by NAME_FILE; both at once is a mistake.
func lookup(getenv func(string) string, name string) (value, source string, err error) {
	value = getenv(name)
	file := getenv(name + "_FILE")
	switch {
	case file == "":
		return value, "environment", nil
	case value != "":
		return "", "", fmt.Errorf("%s and %s_FILE are both set; keep one", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("%s_FILE: %v", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), name + "_FILE", nil
}

func set(v reflect.Value, raw string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (e.g. 5s, 2m)")
		}
		if d < 0 {
			return errors.New("must not be negative")
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		v.Set(reflect.ValueOf(list(raw)))
		return nil
	case []netip.Prefix:
		p, errs := ParsePrefixes(list(raw))
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		v.Set(reflect.ValueOf(p))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true/false)")
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}

// list splits a comma-separated value, dropping blanks.
func list(raw string) []string {
	var items []string
	for s := range strings.SplitSeq(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	return items
}

// ParsePrefixes parses networks such as 10.0.0.0/8 or 2001:db8::/32; a bare address stands
// for itself (/32 or /128). It returns every malformed entry at once.
func ParsePrefixes(list []string) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%q is neither a CIDR nor an address", s))
				continue
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not a CIDR", s))
			continue
		}
		// Masked: 10.1.2.3/8 is read as 10.0.0.0/8, which is what the writer meant.
		out = append(out, p.Masked())
	}
	return out, errs
}

// LogValue renders cfg for the start-up log: every tagged field by its variable name,
// secrets replaced by "***" (or "" when unset, so an operator sees what is missing).
func LogValue(cfg any) slog.Value {
	var attrs []slog.Attr
	collect(reflect.Indirect(reflect.ValueOf(cfg)), &attrs)
	return slog.GroupValue(attrs...)
}

func collect(v reflect.Value, attrs *[]slog.Attr) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() && f.Tag.Get("env") == "" {
			collect(fv, attrs)
			continue
		}
		name := f.Tag.Get("env")
		if name == "" || !f.IsExported() {
			continue
		}
		if f.Tag.Get("secret") == "true" {
			masked := ""
			if !fv.IsZero() {
				masked = "***"
			}
			*attrs = append(*attrs, slog.String(name, masked))
			continue
		}
		if d, ok := fv.Interface().(time.Duration); ok {
			*attrs = append(*attrs, slog.String(name, d.String())) // "5s", not nanoseconds
			continue
		}
		*attrs = append(*attrs, slog.Any(name, fv.Interface()))
	}
}
