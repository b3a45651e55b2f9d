package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"example.com/shop/platform/server"
)

type svcConfig struct {
	Addr   string `env:"SVC_ADDR" default:":9000"`
	Issuer string `env:"OIDC_ISSUER" required:"true"`
	DSN    string `env:"SVC_DSN" secret:"true"`
	Limit  int    `env:"SVC_LIMIT" default:"5"`
}

func (c *svcConfig) Validate() []error {
	if c.Limit > 10 {
		return []error{errors.New("SVC_LIMIT must be at most 10")}
	}
	return nil
}

func checkConfig(t *testing.T, environ ...string) (server.ConfigReport, int) {
	t.Helper()
	var out bytes.Buffer
	code := server.CheckConfig(&out, "svc", "SVC_ADDR", environ, &svcConfig{})
	var r server.ConfigReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("checkconfig printed no report: %v\n%s", err, out.String())
	}
	return r, code
}

func TestCheckConfigAcceptsAValidEnvironmentAndMasksSecrets(t *testing.T) {
	r, code := checkConfig(t, "OIDC_ISSUER=http://kc/realms/shop", "SVC_DSN=postgres://u:hunter2@db", "SVC_ADDR=:7000", "PATH=/bin")
	if code != 0 || !r.Valid || len(r.Problems) != 0 || len(r.Unknown) != 0 {
		t.Fatalf("exit %d, report %+v", code, r)
	}
	if r.Addr != ":7000" || !slices.Equal(r.Secrets, []string{"SVC_DSN"}) || r.Config["SVC_LIMIT"] != float64(5) {
		t.Fatalf("report %+v", r)
	}
	if r.Config["SVC_DSN"] != "***" {
		t.Fatalf("secret not masked: %v", r.Config["SVC_DSN"])
	}
}

func TestCheckConfigReportsEveryProblemAndUnknownVariable(t *testing.T) {
	r, code := checkConfig(t, "SVC_LIMIT=many", "SVC_LIMTI=3", "OIDC_ISSUR=http://kc")
	if code != 1 || r.Valid {
		t.Fatalf("exit %d, report %+v", code, r)
	}
	problems := strings.Join(r.Problems, "\n")
	if len(r.Problems) != 2 || !strings.Contains(problems, "OIDC_ISSUER is required") || !strings.Contains(problems, "SVC_LIMIT") {
		t.Fatalf("problems %q", r.Problems)
	}
	if !slices.Equal(r.Unknown, []string{"OIDC_ISSUR", "SVC_LIMTI"}) {
		t.Fatalf("unknown %v", r.Unknown)
	}
}

func TestCheckConfigFailsOnUnknownVariablesAlone(t *testing.T) {
	r, code := checkConfig(t, "OIDC_ISSUER=http://kc/realms/shop", "SVC_ADRR=:7000")
	if code != 1 || r.Valid || len(r.Problems) != 0 || !slices.Equal(r.Unknown, []string{"SVC_ADRR"}) {
		t.Fatalf("exit %d, report %+v", code, r)
	}
}

func TestCheckConfigRunsValidate(t *testing.T) {
	r, code := checkConfig(t, "OIDC_ISSUER=http://kc/realms/shop", "SVC_LIMIT=11")
	if code != 1 || !slices.Equal(r.Problems, []string{"SVC_LIMIT must be at most 10"}) {
		t.Fatalf("exit %d, report %+v", code, r)
	}
}
