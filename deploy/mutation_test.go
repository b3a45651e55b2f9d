package deploy

import (
	"encoding/json"
	"strings"
	"testing"
)

// Each rule must catch what it is for: every case breaks one thing in a rendered copy of
// a layer that passes, and the check must name the rule and the fault.

// copyObjects deep-copies rendered objects.
func copyObjects(t *testing.T, objs []Object) []Object {
	t.Helper()
	raw, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	var out []Object
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// find returns the object of that kind and name; the test fails when there is none.
func find(t *testing.T, objs []Object, kind, name string) Object {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind && o["metadata"].(map[string]any)["name"] == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// m walks nested maps by keys and list indexes: m(o, "spec", "ports", 0).
func m(t *testing.T, v any, path ...any) map[string]any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	out, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", path)
	}
	return out
}

func podSpec(t *testing.T, objs []Object, kind, name string) map[string]any {
	return m(t, find(t, objs, kind, name), "spec", "template", "spec")
}

func container(t *testing.T, objs []Object, name string) map[string]any {
	return m(t, podSpec(t, objs, "Deployment", name), "containers", 0)
}

// setEnv sets (or adds) a plain variable of the named Deployment's container.
func setEnv(t *testing.T, objs []Object, deployment, name, value string) {
	c := container(t, objs, deployment)
	env, _ := c["env"].([]any)
	for _, e := range env {
		if e := e.(map[string]any); e["name"] == name {
			delete(e, "valueFrom")
			e["value"] = value
			return
		}
	}
	c["env"] = append(env, map[string]any{"name": name, "value": value})
}

func renameEnv(t *testing.T, objs []Object, deployment, from, to string) {
	for _, e := range container(t, objs, deployment)["env"].([]any) {
		if e := e.(map[string]any); e["name"] == from {
			e["name"] = to
			return
		}
	}
	t.Fatalf("%s has no %s", deployment, from)
}

func TestEachRuleCatchesItsFault(t *testing.T) {
	rendered := map[string][]Object{"dev": render(t, "dev"), "prod": render(t, "prod")}
	cases := []struct {
		name   string
		layer  string
		mutate func(t *testing.T, objs []Object)
		rule   string
		want   string // in the problem's object or message
	}{
		{"a misspelt field", "dev", func(t *testing.T, objs []Object) {
			c := container(t, objs, "order")
			c["prots"] = c["ports"]
			delete(c, "ports")
		}, "decode", `unknown field "spec.template.spec.containers[0].prots"`},
		{"a field at the wrong level", "prod", func(t *testing.T, objs []Object) {
			find(t, objs, "Certificate", "order-mtls")["spec"].(map[string]any)["spiffe"] = "spiffe://shop/order-service"
		}, "decode", `unknown field "spec.spiffe"`},
		{"a kind nobody knows", "dev", func(t *testing.T, objs []Object) {
			find(t, objs, "Service", "order")["apiVersion"] = "v2"
		}, "decode", "no kind"},
		{"two containers of one name", "dev", func(t *testing.T, objs []Object) {
			spec := podSpec(t, objs, "Deployment", "gateway")
			spec["containers"] = append(spec["containers"].([]any), copyObjects(t, []Object{container(t, objs, "gateway")})[0])
		}, "schema", "duplicate entries"},
		{"a privileged container", "dev", func(t *testing.T, objs []Object) {
			m(t, container(t, objs, "payment"), "securityContext")["privileged"] = true
		}, "pod-security", "privileged"},
		{"root allowed", "prod", func(t *testing.T, objs []Object) {
			delete(m(t, podSpec(t, objs, "Deployment", "keycloak"), "securityContext"), "runAsNonRoot")
		}, "pod-security", "runAsNonRoot"},
		{"a writable root file system kept, capabilities kept", "dev", func(t *testing.T, objs []Object) {
			delete(m(t, podSpec(t, objs, "StatefulSet", "redis"), "containers", 0, "securityContext"), "capabilities")
		}, "pod-security", "unrestricted capabilities"},
		{"a namespace that does not enforce", "prod", func(t *testing.T, objs []Object) {
			delete(m(t, find(t, objs, "Namespace", "shop"), "metadata", "labels"), "pod-security.kubernetes.io/enforce")
		}, "pod-security", "enforce"},
		{"no memory limit", "prod", func(t *testing.T, objs []Object) {
			delete(m(t, container(t, objs, "webapp"), "resources", "limits"), "memory")
		}, "resources", "no memory limit"},
		{"a token mounted", "prod", func(t *testing.T, objs []Object) {
			find(t, objs, "ServiceAccount", "order")["automountServiceAccountToken"] = true
		}, "service-account", "automountServiceAccountToken"},
		{"a shared ServiceAccount", "dev", func(t *testing.T, objs []Object) {
			podSpec(t, objs, "Deployment", "payment")["serviceAccountName"] = "order"
		}, "service-account", "want its own"},
		{"a rollout that drops a pod", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Deployment", "gateway"), "spec", "strategy", "rollingUpdate")["maxUnavailable"] = 1
		}, "shutdown", "maxUnavailable 0"},
		{"a grace period shorter than the drain", "prod", func(t *testing.T, objs []Object) {
			podSpec(t, objs, "Deployment", "order")["terminationGracePeriodSeconds"] = 12
		}, "shutdown", "does not cover the drain"},
		{"no preStop pause", "dev", func(t *testing.T, objs []Object) {
			delete(container(t, objs, "webapp"), "lifecycle")
		}, "shutdown", "no preStop sleep"},
		{"service links on", "dev", func(t *testing.T, objs []Object) {
			delete(podSpec(t, objs, "Deployment", "gateway"), "enableServiceLinks")
		}, "shutdown", "enableServiceLinks"},
		{"a latest tag", "prod", func(t *testing.T, objs []Object) {
			container(t, objs, "gateway")["image"] = "registry.example.com/shop/gateway:latest"
		}, "images", "no fixed tag"},
		{"no tag", "dev", func(t *testing.T, objs []Object) {
			m(t, podSpec(t, objs, "StatefulSet", "postgres"), "containers", 0)["image"] = "postgres"
		}, "images", "no fixed tag"},
		{"an env typo", "dev", func(t *testing.T, objs []Object) {
			renameEnv(t, objs, "order", "ORDER_PAYMENT_URL", "ORDER_PAYMNET_URL")
		}, "config", "ORDER_PAYMNET_URL is not a variable the order service reads"},
		{"a value the service refuses", "prod", func(t *testing.T, objs []Object) {
			setEnv(t, objs, "payment", "PAYMENT_ORDER_INTERNAL_URL", "http://order:8444")
		}, "config", "PAYMENT_ORDER_INTERNAL_URL"},
		{"a required variable gone", "prod", func(t *testing.T, objs []Object) {
			renameEnv(t, objs, "webapp", "OIDC_ISSUER", "WEBAPP_OIDC_ISSUER")
		}, "config", "OIDC_ISSUER is required"},
		{"no shared client key over https", "prod", func(t *testing.T, objs []Object) {
			c := container(t, objs, "webapp")
			c["env"] = removeEnv(c["env"].([]any), "WEBAPP_CLIENT_KEY_FILE")
		}, "config", "WEBAPP_CLIENT_KEY_FILE is required when serving over https"},
		{"a reference to a missing ConfigMap key", "dev", func(t *testing.T, objs []Object) {
			delete(m(t, objs[indexOfKind(objs, "ConfigMap", "shop-urls")], "data"), "oidc-issuer")
		}, "config", `has no key "oidc-issuer"`},
		{"no readiness probe", "dev", func(t *testing.T, objs []Object) {
			delete(container(t, objs, "payment"), "readinessProbe")
		}, "probes", "no readiness probe"},
		{"a probe on a path nobody serves", "prod", func(t *testing.T, objs []Object) {
			m(t, container(t, objs, "order"), "livenessProbe", "httpGet")["path"] = "/health"
		}, "probes", `path "/health" is not served`},
		{"a probe on the mTLS port", "prod", func(t *testing.T, objs []Object) {
			m(t, container(t, objs, "payment"), "readinessProbe", "httpGet")["port"] = "internal"
		}, "probes", "but the service listens on :8082"},
		{"a Keycloak probe off its management port", "dev", func(t *testing.T, objs []Object) {
			m(t, container(t, objs, "keycloak"), "startupProbe", "httpGet")["port"] = "http"
		}, "probes", "Keycloak serves"},
		{"a Service port to nowhere", "dev", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Service", "order"), "spec", "ports", 1)["targetPort"] = "intrenal"
		}, "services", "does not declare"},
		{"a Service selecting nothing", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Service", "keycloak-discovery"), "spec", "selector")["app.kubernetes.io/name"] = "key-cloak"
		}, "services", "matches no pod template"},
		{"a Secret value in prod", "prod", func(t *testing.T, objs []Object) {
			setEnv(t, objs, "order", "ORDER_CLIENT_SECRET", "hunter2")
		}, "secrets", "ORDER_CLIENT_SECRET is written in the manifest"},
		{"a Keycloak password in prod", "prod", func(t *testing.T, objs []Object) {
			setEnv(t, objs, "keycloak", "KC_DB_PASSWORD", "hunter2")
		}, "secrets", "KC_DB_PASSWORD is written in the manifest"},
		{"no default deny", "dev", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "NetworkPolicy", "default-deny"), "spec")["policyTypes"] = []any{"Ingress"}
		}, "network", "no default deny"},
		{"an extra policy edge", "prod", func(t *testing.T, objs []Object) {
			spec := m(t, find(t, objs, "NetworkPolicy", "webapp"), "spec")
			spec["egress"] = append(spec["egress"].([]any), map[string]any{
				"to":    []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "order"}}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": 8081}},
			})
			spec = m(t, find(t, objs, "NetworkPolicy", "order"), "spec")
			spec["ingress"] = append(spec["ingress"].([]any), map[string]any{
				"from":  []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "webapp"}}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": 8081}},
			})
		}, "network", "webapp -> order:8081/TCP is allowed but not in the call graph"},
		{"half an edge", "dev", func(t *testing.T, objs []Object) {
			spec := m(t, find(t, objs, "NetworkPolicy", "payment"), "spec")
			spec["ingress"] = append(spec["ingress"].([]any), map[string]any{
				"from":  []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "webapp"}}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": 8082}},
			})
		}, "network", "webapp -> payment:8082/TCP: the receiver lets it in"},
		{"a missing edge", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "NetworkPolicy", "order"), "spec", "egress", 0)["ports"] = []any{map[string]any{"protocol": "TCP", "port": 8082}}
		}, "network", "order -> payment:8443/TCP is in the call graph but the policies do not allow it"},
		{"every port", "dev", func(t *testing.T, objs []Object) {
			delete(m(t, find(t, objs, "NetworkPolicy", "gateway"), "spec", "egress", 0), "ports")
		}, "network", "without ports"},
		{"the whole internet as the database", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "NetworkPolicy", "to-postgres"), "spec", "egress", 0, "to", 0, "ipBlock")["cidr"] = "0.0.0.0/0"
		}, "network", "wider than a server's address"},
		{"one replica in prod", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Deployment", "payment"), "spec")["replicas"] = 1
		}, "availability", "replicas 1"},
		{"no PodDisruptionBudget", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "PodDisruptionBudget", "gateway"), "spec", "selector", "matchLabels")["app.kubernetes.io/name"] = "gate"
		}, "availability", "no PodDisruptionBudget"},
		{"no autoscaler", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "HorizontalPodAutoscaler", "webapp"), "spec")["minReplicas"] = 1
		}, "availability", "no HorizontalPodAutoscaler"},
		{"no spread over nodes", "prod", func(t *testing.T, objs []Object) {
			delete(podSpec(t, objs, "Deployment", "order"), "topologySpreadConstraints")
		}, "availability", "no topology spread"},
		{"another service's SPIFFE id", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Certificate", "order-mtls"), "spec")["uris"] = []any{"spiffe://shop/payment-service"}
		}, "certificates", "lack spiffe://shop/order-service"},
		{"a certificate the callers cannot verify", "prod", func(t *testing.T, objs []Object) {
			m(t, find(t, objs, "Certificate", "payment-mtls"), "spec")["dnsNames"] = []any{"payment.example.com"}
		}, "certificates", `lack "payment"`},
	}
	config := configChecker(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs := copyObjects(t, rendered[c.layer])
			c.mutate(t, objs)
			problems := Check(objs, Options{Layer: c.layer, Config: config})
			for _, p := range problems {
				if p.Rule == c.rule && strings.Contains(p.Object+": "+p.Msg, c.want) {
					t.Log(p)
					return
				}
			}
			t.Errorf("no [%s] problem with %q; got %v", c.rule, c.want, problems)
		})
	}
}

func removeEnv(env []any, name string) []any {
	var out []any
	for _, e := range env {
		if e.(map[string]any)["name"] != name {
			out = append(out, e)
		}
	}
	return out
}

// indexOfKind finds an object by kind and name prefix (generated names carry a hash).
func indexOfKind(objs []Object, kind, prefix string) int {
	for i, o := range objs {
		if o["kind"] == kind && strings.HasPrefix(o["metadata"].(map[string]any)["name"].(string), prefix) {
			return i
		}
	}
	return -1
}

// TestStrictDecodingRefusesDuplicateFields: a field given twice fails, as in the
// API server's strict field validation, rather than the last one winning.
func TestStrictDecodingRefusesDuplicateFields(t *testing.T) {
	raw := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`)
	if _, _, err := strict.Decode(raw, nil, nil); err == nil || !strings.Contains(err.Error(), "duplicate field") {
		t.Fatalf("err = %v, want a duplicate field error", err)
	}
}
