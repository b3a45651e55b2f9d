package deploy

import (
	"cmp"
	"fmt"
	"slices"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Problem is one broken rule.
type Problem struct {
	Rule   string // the rule's name, e.g. "probes"
	Object string // Kind/namespace/name
	Msg    string
}

func (p Problem) String() string { return fmt.Sprintf("[%s] %s: %s", p.Rule, p.Object, p.Msg) }

// Options say which layer is checked and how the services judge their configuration.
type Options struct {
	// Layer is "base", "dev" or "prod": base and prod may hold no Secret values, prod
	// must be highly available.
	Layer string
	// Config runs a service's own configuration check (`<binary> checkconfig`).
	Config ConfigChecker
}

// workload is a pod template and what owns it.
type workload struct {
	obj      string // Kind/namespace/name of the owner
	name     string // the pods' app.kubernetes.io/name
	replicas int32
	tmpl     *corev1.PodTemplateSpec
	deploy   *appsv1.Deployment // nil for other kinds
}

// set is a rendered overlay, decoded.
type set struct {
	opts      Options
	problems  []Problem
	workloads []workload
	services  []*corev1.Service
	accounts  map[string]*corev1.ServiceAccount
	config    map[string]*corev1.ConfigMap
	secrets   map[string]*corev1.Secret
	policies  []*networkingv1.NetworkPolicy
	policyIDs []string
	namespace []*corev1.Namespace
	pdbs      []*policyv1.PodDisruptionBudget
	hpas      []*autoscalingv2.HorizontalPodAutoscaler
	certs     []*cmv1.Certificate
	issuers   map[string]bool
	reports   map[string]*report // per shop service container, its config check
}

func (s *set) fail(rule, obj, format string, args ...any) {
	s.problems = append(s.problems, Problem{rule, obj, fmt.Sprintf(format, args...)})
}

// rules run in order on the decoded objects; each adds its Problems.
var rules = []struct {
	name string
	run  func(*set)
}{
	{"pod-security", podSecurity},
	{"resources", resources},
	{"service-account", serviceAccounts},
	{"shutdown", shutdown},
	{"images", images},
	{"config", configs}, // before probes and secrets, which read its reports
	{"probes", probes},
	{"services", services},
	{"secrets", secretValues},
	{"network", network},
	{"availability", availability},
	{"certificates", certificates},
}

// typeConverter validates objects against the OpenAPI schemas compiled into client-go.
var typeConverter = applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)

// Check decodes and validates objs and applies every rule, returning all problems.
func Check(objs []Object, opts Options) []Problem {
	s := &set{opts: opts, accounts: map[string]*corev1.ServiceAccount{}, config: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, issuers: map[string]bool{}, reports: map[string]*report{}}
	for _, o := range objs {
		obj, err := decode(o)
		if err != nil {
			s.fail("decode", id(o), "%v", err)
			continue
		}
		if clientgoscheme.Scheme.Recognizes(gvk(o)) {
			if _, err := typeConverter.ObjectToTyped(&unstructured.Unstructured{Object: o}); err != nil {
				s.fail("schema", id(o), "%v", err)
				continue
			}
		}
		s.add(id(o), obj)
	}
	for _, r := range rules {
		r.run(s)
	}
	slices.SortStableFunc(s.problems, func(a, b Problem) int { return cmp.Compare(a.Rule, b.Rule) })
	return s.problems
}

func (s *set) add(oid string, obj any) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s.workloads = append(s.workloads, workload{oid, o.Spec.Template.Labels[nameLabel], deref(o.Spec.Replicas, 1), &o.Spec.Template, o})
	case *appsv1.StatefulSet:
		s.workloads = append(s.workloads, workload{oid, o.Spec.Template.Labels[nameLabel], deref(o.Spec.Replicas, 1), &o.Spec.Template, nil})
	case *appsv1.DaemonSet:
		s.workloads = append(s.workloads, workload{oid, o.Spec.Template.Labels[nameLabel], 1, &o.Spec.Template, nil})
	case *corev1.Pod:
		s.workloads = append(s.workloads, workload{oid, o.Labels[nameLabel], 1, &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}, nil})
	case *corev1.Service:
		s.services = append(s.services, o)
	case *corev1.ServiceAccount:
		s.accounts[o.Name] = o
	case *corev1.ConfigMap:
		s.config[o.Name] = o
	case *corev1.Secret:
		s.secrets[o.Name] = o
	case *corev1.Namespace:
		s.namespace = append(s.namespace, o)
	case *networkingv1.NetworkPolicy:
		s.policies, s.policyIDs = append(s.policies, o), append(s.policyIDs, oid)
	case *policyv1.PodDisruptionBudget:
		s.pdbs = append(s.pdbs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.hpas = append(s.hpas, o)
	case *cmv1.Certificate:
		s.certs = append(s.certs, o)
	case *cmv1.Issuer:
		s.issuers[o.Name] = true
	}
}

// nameLabel names a workload's pods; the call graph's nodes are its values.
const nameLabel = "app.kubernetes.io/name"

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
