// Package deploy proves the shop's Kubernetes manifests (base/, overlays/) without a
// cluster. Render runs Kustomize in process, and Check decodes every object strictly
// (client-go's scheme and cert-manager's types), validates it against the API schemas that
// ship with client-go, evaluates every pod template at Pod Security "restricted", and
// applies the project's own rules: probes on routes the services serve, each container's
// environment judged by that service's own configuration loader (`<binary> checkconfig`),
// NetworkPolicies that allow exactly CallGraph, no Secret values outside dev, no floating
// image tags, and in prod the replicas, disruption budgets, autoscalers, spread and
// certificates that production needs. `make k8s-check` runs it, and `make test` with it.
package deploy
