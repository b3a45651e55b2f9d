package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"

	"example.com/shop/platform/config"
)

// ConfigReport is what `<binary> checkconfig` prints: whether the environment it was given
// configures the service, and if not, every reason at once. Deployment checks run each
// service's binary this way with exactly the environment a manifest sets, so the service's
// own loader judges the manifest, not a copy of its rules.
type ConfigReport struct {
	Service string `json:"service"`
	// Valid is true when the configuration loads and no variable is unknown.
	Valid bool `json:"valid"`
	// Problems are the loader's and Validate's complaints.
	Problems []string `json:"problems,omitempty"`
	// Unknown are variables with one of the service's prefixes that it does not read:
	// typos, or settings of another version.
	Unknown []string `json:"unknown,omitempty"`
	// Addr is the public listen address, where /healthz and /readyz are served.
	Addr string `json:"addr,omitempty"`
	// Secrets are the variables whose values are secret (to come from a Secret, never
	// written in a manifest).
	Secrets []string `json:"secrets"`
	// Config is the loaded configuration as the start-up log shows it, secrets masked.
	Config map[string]any `json:"config,omitempty"`
}

// CheckConfig loads cfg (a pointer to the service's zero Config) from environ (NAME=value
// pairs), writes the ConfigReport to w as JSON, and returns the process exit code: 0 when
// valid, 1 otherwise. addrVar names the variable of the public listen address.
func CheckConfig(w io.Writer, name, addrVar string, environ []string, cfg any) int {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	r := ConfigReport{Service: name, Unknown: config.Unknown(environ, cfg), Secrets: []string{}}
	for _, v := range config.Vars(cfg) {
		if v.Secret {
			r.Secrets = append(r.Secrets, v.Name)
		}
	}
	if err := config.Load(func(k string) string { return env[k] }, cfg); err != nil {
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				r.Problems = append(r.Problems, e.Error())
			}
		} else {
			r.Problems = append(r.Problems, err.Error())
		}
	} else {
		r.Config = map[string]any{}
		for _, a := range config.LogValue(cfg).Group() {
			r.Config[a.Key] = a.Value.Resolve().Any()
		}
		if addr, ok := r.Config[addrVar].(string); ok {
			r.Addr = addr
		}
	}
	r.Valid = len(r.Problems) == 0 && len(r.Unknown) == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		slog.Error("checkconfig", "err", err)
		return 1
	}
	if !r.Valid {
		return 1
	}
	return 0
}
