package deploy

import (
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
)

// restricted evaluates pod templates as the API server's Pod Security admission does.
var restricted = func() psapolicy.Evaluator {
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		panic(err)
	}
	return e
}()

// podSecurity: every pod template passes "restricted", and every namespace enforces it.
func podSecurity(s *set) {
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, w := range s.workloads {
		for _, r := range restricted.EvaluatePod(lv, &w.tmpl.ObjectMeta, &w.tmpl.Spec) {
			if !r.Allowed {
				s.fail("pod-security", w.obj, "restricted: %s (%s)", r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
	}
	for _, ns := range s.namespace {
		for _, mode := range []string{psaapi.EnforceLevelLabel, psaapi.AuditLevelLabel, psaapi.WarnLevelLabel} {
			if ns.Labels[mode] != string(psaapi.LevelRestricted) {
				s.fail("pod-security", "Namespace/"+ns.Name, "label %s must be restricted", mode)
			}
		}
	}
}

func containers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// resources: requests and limits of CPU and memory on every container.
func resources(s *set) {
	for _, w := range s.workloads {
		for _, c := range containers(&w.tmpl.Spec) {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					s.fail("resources", w.obj, "container %s: no %s request", c.Name, r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					s.fail("resources", w.obj, "container %s: no %s limit", c.Name, r)
				}
			}
		}
	}
}

// serviceAccounts: each workload runs as its own ServiceAccount, and no pod gets an API token.
func serviceAccounts(s *set) {
	for _, w := range s.workloads {
		spec := &w.tmpl.Spec
		if spec.ServiceAccountName == "" || spec.ServiceAccountName != w.name {
			s.fail("service-account", w.obj, "runs as ServiceAccount %q; want its own, %q", spec.ServiceAccountName, w.name)
		}
		sa, ok := s.accounts[spec.ServiceAccountName]
		if !ok {
			s.fail("service-account", w.obj, "ServiceAccount %q is not in the manifests", spec.ServiceAccountName)
		} else if deref(sa.AutomountServiceAccountToken, true) {
			s.fail("service-account", "ServiceAccount/"+sa.Namespace+"/"+sa.Name, "automountServiceAccountToken must be false")
		}
		if deref(spec.AutomountServiceAccountToken, true) {
			s.fail("service-account", w.obj, "automountServiceAccountToken must be false in the pod too")
		}
	}
}

// shopServices are the shop's own binaries, by workload name: their main packages.
var shopServices = map[string]string{
	"webapp": "./webapp/cmd/webapp", "gateway": "./gateway/cmd/gateway",
	"order": "./order/cmd/order", "payment": "./payment/cmd/payment",
}

// shutdown: rollouts never lower capacity, and the grace period covers the drain: the
// preStop pause, then (for the shop's services) server.ShutdownTimeout.
func shutdown(s *set) {
	for _, w := range s.workloads {
		if d := w.deploy; d != nil {
			ru := d.Spec.Strategy.RollingUpdate
			if d.Spec.Strategy.Type != "RollingUpdate" || ru == nil || ru.MaxUnavailable == nil || !isZero(*ru.MaxUnavailable) {
				s.fail("shutdown", w.obj, "strategy must be RollingUpdate with maxUnavailable 0")
			}
		}
		spec := &w.tmpl.Spec
		if deref(spec.EnableServiceLinks, true) {
			s.fail("shutdown", w.obj, "enableServiceLinks must be false: service links add ORDER_*, PAYMENT_* and other variables the services would read as theirs")
		}
		grace := time.Duration(deref(spec.TerminationGracePeriodSeconds, 30)) * time.Second
		for _, c := range spec.Containers {
			var pause time.Duration
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				s.fail("shutdown", w.obj, "container %s: no preStop sleep: the pod would stop accepting before the endpoints forget it", c.Name)
			} else {
				pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
			need := pause
			if _, ok := shopServices[w.name]; ok {
				need += server.ShutdownTimeout
			}
			if grace <= need {
				s.fail("shutdown", w.obj, "terminationGracePeriodSeconds %s does not cover the drain (%s)", grace, need)
			}
		}
	}
}

func isZero(v intstr.IntOrString) bool {
	return (v.Type == intstr.Int && v.IntVal == 0) || v.StrVal == "0" || v.StrVal == "0%"
}

// images: every image names a fixed version: a tag other than latest, or a digest.
func images(s *set) {
	for _, w := range s.workloads {
		for _, c := range containers(&w.tmpl.Spec) {
			ref := c.Image
			if strings.Contains(ref, "@sha256:") {
				continue
			}
			name := ref[strings.LastIndex(ref, "/")+1:]
			_, tag, ok := strings.Cut(name, ":")
			if !ok || tag == "" || tag == "latest" {
				s.fail("images", w.obj, "container %s: image %q has no fixed tag", c.Name, ref)
			}
		}
	}
}

// keycloakHealth are the health endpoints Keycloak serves on its management port once
// built with health enabled (deploy/keycloak/Dockerfile).
var keycloakHealth = struct {
	port  int32
	paths []string
}{9000, []string{"/health/started", "/health/ready", "/health/live"}}

// platformRoutes are the GET routes every shop service serves before its own: those of
// platform/server.New, where the probes are.
var platformRoutes = func() []string {
	var paths []string
	for _, r := range server.New(server.Options{}).GetRoutes(true) {
		if r.Method == "GET" {
			paths = append(paths, r.Path)
		}
	}
	return paths
}()

// probes: every container has startup, readiness and liveness probes, and an HTTP probe
// asks a path its server serves on the port it listens on.
func probes(s *set) {
	for _, w := range s.workloads {
		for _, c := range w.tmpl.Spec.Containers {
			for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil {
					s.fail("probes", w.obj, "container %s: no %s probe", c.Name, kind)
					continue
				}
				if p.HTTPGet == nil {
					continue
				}
				port, ok := containerPort(&c, p.HTTPGet.Port)
				if !ok {
					s.fail("probes", w.obj, "container %s: %s probe port %s is not a port of the container", c.Name, kind, p.HTTPGet.Port.String())
					continue
				}
				switch {
				case shopServices[w.name] != "":
					r := s.reports[w.name]
					if r == nil {
						continue // its configuration failed; reported there
					}
					if want := addrPort(r.Addr); port != want {
						s.fail("probes", w.obj, "container %s: %s probe on port %d, but the service listens on %s", c.Name, kind, port, r.Addr)
					}
					if !slices.Contains(platformRoutes, p.HTTPGet.Path) {
						s.fail("probes", w.obj, "container %s: %s probe path %q is not served (served: %v)", c.Name, kind, p.HTTPGet.Path, platformRoutes)
					}
				case w.name == "keycloak":
					if port != keycloakHealth.port || !slices.Contains(keycloakHealth.paths, p.HTTPGet.Path) {
						s.fail("probes", w.obj, "container %s: %s probe %s on %d; Keycloak serves %v on %d", c.Name, kind, p.HTTPGet.Path, port, keycloakHealth.paths, keycloakHealth.port)
					}
				default:
					s.fail("probes", w.obj, "container %s: an HTTP probe nobody can check; use exec or add its routes here", c.Name)
				}
			}
		}
	}
}

// containerPort resolves a probe's or Service's port (number or name) to a port the
// container declares.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// addrPort is the port of a listen address such as ":8081"; 0 when it has none.
func addrPort(addr string) int32 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// services: every Service selects pods and sends each port to one they declare.
func services(s *set) {
	for _, svc := range s.services {
		oid := "Service/" + svc.Namespace + "/" + svc.Name
		if len(svc.Spec.Selector) == 0 {
			s.fail("services", oid, "selects no pods")
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var matched []workload
		for _, w := range s.workloads {
			if sel.Matches(labels.Set(w.tmpl.Labels)) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			s.fail("services", oid, "selector %v matches no pod template", svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, w := range matched {
				if !slices.ContainsFunc(w.tmpl.Spec.Containers, func(c corev1.Container) bool { _, ok := containerPort(&c, target); return ok }) {
					s.fail("services", oid, "port %s targets %s, which %s does not declare", p.Name, target.String(), w.obj)
				}
			}
		}
	}
}

// secretLike names variables that hold credentials in containers whose loader cannot
// say (Keycloak, PostgreSQL): their values must come from Secrets.
var secretLike = regexp.MustCompile(`PASSWORD|SECRET|_DSN$|TOKEN|_DB_URL$`)

// secretValues: base and prod hold no Secret values: no Secret with data, no credential
// written as a plain value.
func secretValues(s *set) {
	if s.opts.Layer == "dev" {
		return
	}
	for _, sec := range s.secrets {
		if len(sec.Data) > 0 || len(sec.StringData) > 0 {
			s.fail("secrets", "Secret/"+sec.Namespace+"/"+sec.Name, "holds values; the operator creates it (deploy/README.md)")
		}
	}
	for _, w := range s.workloads {
		for _, c := range containers(&w.tmpl.Spec) {
			var secret []string
			if r := s.reports[w.name]; r != nil {
				secret = r.Secrets
			}
			for _, e := range c.Env {
				if e.Value != "" && (slices.Contains(secret, e.Name) || secretLike.MatchString(e.Name)) {
					s.fail("secrets", w.obj, "container %s: %s is written in the manifest; take it from a Secret", c.Name, e.Name)
				}
			}
		}
	}
}

// availability: in prod each Deployment runs two replicas or more, spread over nodes,
// with a PodDisruptionBudget and an autoscaler that keeps two at least.
func availability(s *set) {
	if s.opts.Layer != "prod" {
		return
	}
	for _, w := range s.workloads {
		if w.deploy == nil {
			continue
		}
		if w.replicas < 2 {
			s.fail("availability", w.obj, "replicas %d; prod runs 2 at least", w.replicas)
		}
		pods := labels.Set(w.tmpl.Labels)
		if !slices.ContainsFunc(s.pdbs, func(p *policyv1.PodDisruptionBudget) bool { return selects(p.Spec.Selector, pods) }) {
			s.fail("availability", w.obj, "no PodDisruptionBudget selects its pods")
		}
		if !slices.ContainsFunc(s.hpas, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == w.deploy.Name && deref(h.Spec.MinReplicas, 1) >= 2
		}) {
			s.fail("availability", w.obj, "no HorizontalPodAutoscaler scales it with minReplicas 2 at least")
		}
		if !slices.ContainsFunc(w.tmpl.Spec.TopologySpreadConstraints, func(t corev1.TopologySpreadConstraint) bool {
			return t.TopologyKey == corev1.LabelHostname && t.LabelSelector != nil && selects(t.LabelSelector, pods)
		}) {
			s.fail("availability", w.obj, "no topology spread over nodes (%s)", corev1.LabelHostname)
		}
	}
}

func selects(sel *metav1.LabelSelector, pods labels.Set) bool {
	ls, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !ls.Empty() && ls.Matches(pods)
}

// certificates: in prod the internal mTLS certificates come from cert-manager, carry the
// SPIFFE id platform/mtls expects of the service and the Service's name, from an Issuer
// of the manifests.
func certificates(s *set) {
	if s.opts.Layer != "prod" {
		return
	}
	for _, w := range s.workloads {
		if w.name != "order" && w.name != "payment" {
			continue
		}
		var secretName string
		for _, v := range w.tmpl.Spec.Volumes {
			if v.Name == "mtls" && v.Secret != nil {
				secretName = v.Secret.SecretName
			}
		}
		i := slices.IndexFunc(s.certs, func(c *cmv1.Certificate) bool { return c.Spec.SecretName == secretName })
		if secretName == "" || i < 0 {
			s.fail("certificates", w.obj, "its mtls volume (Secret %q) is not issued by a cert-manager Certificate", secretName)
			continue
		}
		c := s.certs[i]
		cid := "Certificate/" + c.Namespace + "/" + c.Name
		if want := mtls.ID(w.name + "-service"); !slices.Contains(c.Spec.URIs, want) {
			s.fail("certificates", cid, "URI SANs %v lack %s", c.Spec.URIs, want)
		}
		if !slices.Contains(c.Spec.DNSNames, w.name) {
			s.fail("certificates", cid, "DNS names %v lack %q, the name its callers dial", c.Spec.DNSNames, w.name)
		}
		if c.Spec.IssuerRef.Kind != "Issuer" || !s.issuers[c.Spec.IssuerRef.Name] {
			s.fail("certificates", cid, "issuer %s/%s is not an Issuer of the manifests", c.Spec.IssuerRef.Kind, c.Spec.IssuerRef.Name)
		}
	}
}
