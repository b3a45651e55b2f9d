package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"example.com/shop/platform/server"
)

// report is a service's verdict on an environment (`<binary> checkconfig`).
type report = server.ConfigReport

// ConfigChecker runs the shop service named service on env (NAME=value pairs, nothing
// else) in its checkconfig mode and returns its report.
type ConfigChecker func(service string, env []string) (*report, error)

// BuildConfigChecker builds the shop's binaries from the repository at root into dir and
// returns a ConfigChecker that runs them.
func BuildConfigChecker(root, dir string) (ConfigChecker, error) {
	// One go command for the four: it builds their shared packages once, in parallel.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for name, pkg := range shopServices {
		args = append(args, pkg)
		bins[name] = filepath.Join(dir, filepath.Base(pkg))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the services: %v\n%s", err, out)
	}
	return func(service string, env []string) (*report, error) {
		bin, ok := bins[service]
		if !ok {
			return nil, fmt.Errorf("no binary for %q", service)
		}
		cmd := exec.Command(bin, "checkconfig")
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		var r report
		if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
			return nil, fmt.Errorf("%s checkconfig: %v (exit: %v)", service, jerr, err)
		}
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return nil, err
		}
		return &r, nil
	}, nil
}

// OperatorSecrets are the Secrets the prod overlay expects the operator to create, with
// their keys and a value of the right shape: the check runs the services with these in
// place of the real ones, and deploy/README.md lists them.
var OperatorSecrets = map[string]map[string]string{
	"shop-postgres": {
		"order-dsn":         "host=db.example.com port=5432 user=order password=example dbname=orders sslmode=verify-full",
		"payment-dsn":       "host=db.example.com port=5432 user=payment password=example dbname=payments sslmode=verify-full",
		"keycloak-jdbc-url": "jdbc:postgresql://db.example.com:5432/keycloak?sslmode=verify-full",
		"keycloak-username": "keycloak",
		"keycloak-password": "example",
	},
	"shop-redis": {
		"webapp-url":  "rediss://:example@redis.example.com:6379/1",
		"gateway-url": "rediss://:example@redis.example.com:6379/0",
	},
	"shop-oidc-clients": {"order-service": "example-2", "payment-service": "example-3"},
	"webapp-client-key": {"key.pem": "an ES256 private key in PEM"},
	"shop-keycloak": {
		"admin-username": "admin", "admin-password": "example",
		"alice-password": "example", "bob-password": "example", "ada-password": "example",
	},
}

// configs: each shop service's container environment, exactly as rendered (ConfigMap and
// Secret references resolved), is accepted by the service's own loader, with no variable
// it does not know.
func configs(s *set) {
	if s.opts.Config == nil {
		return
	}
	for _, w := range s.workloads {
		if shopServices[w.name] == "" {
			continue
		}
		for _, c := range w.tmpl.Spec.Containers {
			env, ok := s.resolveEnv(w, &c)
			if !ok {
				continue
			}
			r, err := s.opts.Config(w.name, env)
			if err != nil {
				s.fail("config", w.obj, "container %s: %v", c.Name, err)
				continue
			}
			for _, p := range r.Problems {
				s.fail("config", w.obj, "container %s: %s", c.Name, p)
			}
			for _, u := range r.Unknown {
				s.fail("config", w.obj, "container %s: %s is not a variable the %s service reads", c.Name, u, w.name)
			}
			s.reports[w.name] = r
		}
	}
}

// resolveEnv is the environment the kubelet would give c, as NAME=value pairs.
func (s *set) resolveEnv(w workload, c *corev1.Container) ([]string, bool) {
	ok := true
	if len(c.EnvFrom) > 0 {
		s.fail("config", w.obj, "container %s: envFrom hides which variables it sets; list them under env", c.Name)
		ok = false
	}
	var env []string
	for _, e := range c.Env {
		v, err := s.envValue(w, e)
		if err != nil {
			s.fail("config", w.obj, "container %s: %s: %v", c.Name, e.Name, err)
			ok = false
			continue
		}
		env = append(env, e.Name+"="+v)
	}
	return env, ok
}

func (s *set) envValue(w workload, e corev1.EnvVar) (string, error) {
	f := e.ValueFrom
	switch {
	case f == nil:
		if strings.Contains(e.Value, "$(") {
			return "", errors.New("$(VAR) references are not checked; write the value")
		}
		return e.Value, nil
	case f.ConfigMapKeyRef != nil:
		cm, ok := s.config[f.ConfigMapKeyRef.Name]
		if !ok {
			return "", fmt.Errorf("ConfigMap %q is not in the manifests", f.ConfigMapKeyRef.Name)
		}
		v, ok := cm.Data[f.ConfigMapKeyRef.Key]
		if !ok {
			return "", fmt.Errorf("ConfigMap %q has no key %q", f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key)
		}
		return v, nil
	case f.SecretKeyRef != nil:
		name, key := f.SecretKeyRef.Name, f.SecretKeyRef.Key
		if sec, ok := s.secrets[name]; ok {
			if v, ok := sec.Data[key]; ok {
				return string(v), nil
			}
			if v, ok := sec.StringData[key]; ok {
				return v, nil
			}
			return "", fmt.Errorf("Secret %q has no key %q", name, key)
		}
		if s.opts.Layer == "dev" {
			return "", fmt.Errorf("Secret %q is not generated by the dev overlay", name)
		}
		v, ok := OperatorSecrets[name][key]
		if !ok {
			return "", fmt.Errorf("Secret %q key %q is neither in the manifests nor among the operator's Secrets (OperatorSecrets)", name, key)
		}
		return v, nil
	case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
		return "shop", nil
	}
	return "", errors.New("a reference the check cannot resolve")
}
