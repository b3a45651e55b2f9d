package deploy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Node is a party of the call graph: a workload of the namespace (named by its pods'
// app.kubernetes.io/name label), or a peer outside it.
type Node string

// The shop's nodes.
const (
	Browser  Node = "browser" // the public, through the ingress controller
	Webapp   Node = "webapp"
	Gateway  Node = "gateway"
	Order    Node = "order"
	Payment  Node = "payment"
	Keycloak Node = "keycloak"
	Postgres Node = "postgres" // in the namespace in dev, an external server in prod
	Redis    Node = "redis"    // likewise
	DNS      Node = "dns"      // the cluster's DNS, which every pod may ask
)

// Edge is one connection the shop needs: From opens a TCP connection to To's Port.
type Edge struct {
	From, To Node
	Port     int32
	Why      string
}

func (e Edge) String() string { return fmt.Sprintf("%s -> %s:%d", e.From, e.To, e.Port) }

// CallGraph is every connection the shop makes, declared once: the NetworkPolicies must
// allow exactly these (plus DNS from every pod, DNSPorts), the check proves it, and
// deploy/README.md draws them (Mermaid).
var CallGraph = []Edge{
	{Browser, Webapp, 8080, "the shop and the admin console"},
	{Browser, Gateway, 8000, "the public API"},
	{Browser, Keycloak, 8080, "login"},
	{Webapp, Gateway, 8000, "the API, with the shopper's token"},
	{Webapp, Keycloak, 8080, "code exchange, refresh, keys"},
	{Webapp, Redis, 6379, "sessions shared by the replicas"},
	{Gateway, Order, 8081, "routes to the order API"},
	{Gateway, Payment, 8082, "routes to the payment API"},
	{Gateway, Keycloak, 8080, "token keys"},
	{Gateway, Redis, 6379, "rate limits shared by the replicas"},
	{Order, Payment, 8082, "checkout charges, with the shopper's exchanged token"},
	{Order, Payment, 8443, "mTLS: how did a charge end (reconciliation)"},
	{Payment, Order, 8081, "reads the order, with the shopper's exchanged token"},
	{Payment, Order, 8444, "mTLS: payment notices"},
	{Order, Keycloak, 8080, "keys, token exchange, client credentials"},
	{Payment, Keycloak, 8080, "keys, token exchange, client credentials"},
	{Order, Postgres, 5432, "the orders database"},
	{Payment, Postgres, 5432, "the payments database"},
	{Keycloak, Postgres, 5432, "the realm and its sessions"},
	{Keycloak, Webapp, 8080, "back-channel logout"},
	{Keycloak, Keycloak, 7800, "the Infinispan cluster (JGroups)"},
	{Keycloak, Keycloak, 57800, "JGroups failure detection"},
}

// DNSPorts are the DNS ports every pod may reach (UDP and TCP alike).
var DNSPorts = []int32{53}

// edgeKey is an allowed connection as the policies are compared: TCP unless said.
type edgeKey struct {
	From, To Node
	Port     int32
	Protocol string
}

func (k edgeKey) String() string {
	return fmt.Sprintf("%s -> %s:%d/%s", k.From, k.To, k.Port, k.Protocol)
}

// expectedEdges is CallGraph plus DNS from each of the given workloads.
func expectedEdges(workloads []Node) map[edgeKey]bool {
	want := map[edgeKey]bool{}
	for _, e := range CallGraph {
		want[edgeKey{e.From, e.To, e.Port, "TCP"}] = true
	}
	for _, w := range workloads {
		for _, p := range DNSPorts {
			want[edgeKey{w, DNS, p, "UDP"}] = true
			want[edgeKey{w, DNS, p, "TCP"}] = true
		}
	}
	return want
}

// Mermaid draws CallGraph as a Mermaid flowchart, one arrow per pair with its ports; the
// README's picture is this text, and a test keeps them equal.
func Mermaid() string {
	type pair struct{ from, to Node }
	ports := map[pair][]string{}
	var order []pair
	for _, e := range CallGraph {
		p := pair{e.From, e.To}
		if _, ok := ports[p]; !ok {
			order = append(order, p)
		}
		ports[p] = append(ports[p], fmt.Sprint(e.Port))
	}
	slices.SortStableFunc(order, func(a, b pair) int { return cmp.Compare(a.from, b.from) })
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, p := range order {
		fmt.Fprintf(&b, "  %s -->|%s| %s\n", p.from, strings.Join(ports[p], ", "), p.to)
	}
	b.WriteString("  %% and every pod -->|53 UDP and TCP| dns\n")
	return b.String()
}
