package deploy

import (
	"maps"
	"net"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// externalAnnotation names, on a NetworkPolicy, the node its ipBlock peers stand for
// (prod's PostgreSQL and Redis live at addresses the operator fills in).
const externalAnnotation = "shop.example.com/external-peer"

// outside are the peers recognised in other namespaces: the namespace's name label and,
// where only some of its pods are meant, their labels.
var outside = []struct {
	node      Node
	namespace string
	pods      map[string]string
}{
	{Browser, "ingress-nginx", nil},
	{DNS, "kube-system", map[string]string{"k8s-app": "kube-dns"}},
}

// network: a default deny in both directions, then the policies allow exactly
// expectedEdges: each edge open at both ends (the sender's egress and the receiver's
// ingress; one end for a peer outside the namespace), and nothing else, not even half.
func network(s *set) {
	const rule = "network"
	if !slices.ContainsFunc(s.policies, func(p *networkingv1.NetworkPolicy) bool {
		return len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
			slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0
	}) {
		s.fail(rule, "NetworkPolicy", "no default deny of ingress and egress for every pod")
	}
	internal := map[Node]labels.Set{}
	for _, w := range s.workloads {
		internal[Node(w.name)] = labels.Set(w.tmpl.Labels)
	}
	selected := func(sel metav1.LabelSelector) []Node {
		ls, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			return nil
		}
		var nodes []Node
		for n, l := range internal {
			if ls.Matches(l) {
				nodes = append(nodes, n)
			}
		}
		return nodes
	}
	type open struct{ ingress, egress bool }
	isolated := map[Node]*open{}
	for n := range internal {
		isolated[n] = &open{}
	}
	ingress, egress := map[edgeKey]bool{}, map[edgeKey]bool{}
	for i, p := range s.policies {
		pid := s.policyIDs[i]
		targets := selected(p.Spec.PodSelector)
		for _, t := range targets {
			isolated[t].ingress = isolated[t].ingress || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			isolated[t].egress = isolated[t].egress || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
		add := func(into map[edgeKey]bool, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, dir string) {
			if len(peers) == 0 {
				s.fail(rule, pid, "an %s rule without peers admits everyone", dir)
				return
			}
			if len(ports) == 0 {
				s.fail(rule, pid, "an %s rule without ports admits every port", dir)
				return
			}
			for _, peer := range peers {
				nodes := s.peerNodes(pid, p, peer, selected)
				for _, port := range ports {
					if port.Port == nil || port.Port.IntVal == 0 || port.EndPort != nil {
						s.fail(rule, pid, "give each port by number, one at a time")
						continue
					}
					proto := string(deref(port.Protocol, "TCP"))
					for _, n := range nodes {
						for _, t := range targets {
							if dir == "ingress" {
								into[edgeKey{n, t, port.Port.IntVal, proto}] = true
							} else {
								into[edgeKey{t, n, port.Port.IntVal, proto}] = true
							}
						}
					}
				}
			}
		}
		for _, r := range p.Spec.Ingress {
			add(ingress, r.From, r.Ports, "ingress")
		}
		for _, r := range p.Spec.Egress {
			add(egress, r.To, r.Ports, "egress")
		}
	}
	for n, o := range isolated {
		if !o.ingress || !o.egress {
			s.fail(rule, "workload "+string(n), "not isolated in both directions: traffic the graph does not name gets through")
		}
	}
	// An edge is open when both ends let it through; a peer outside has no end here.
	allowed := map[edgeKey]bool{}
	for _, k := range slices.Collect(maps.Keys(ingress)) {
		if _, in := internal[k.From]; !in || egress[k] {
			allowed[k] = true
		} else {
			s.fail(rule, "graph", "%s: the receiver lets it in, the sender's egress does not let it out", k)
		}
	}
	for _, k := range slices.Collect(maps.Keys(egress)) {
		if _, in := internal[k.To]; !in {
			allowed[k] = true
		} else if !ingress[k] {
			s.fail(rule, "graph", "%s: the sender lets it out, the receiver's ingress does not let it in", k)
		}
	}
	want := expectedEdges(slices.Collect(maps.Keys(internal)))
	for _, k := range sortedKeys(want) {
		if !allowed[k] {
			s.fail(rule, "graph", "%s is in the call graph but the policies do not allow it", k)
		}
	}
	for _, k := range sortedKeys(allowed) {
		if !want[k] {
			s.fail(rule, "graph", "%s is allowed but not in the call graph (deploy/graph.go)", k)
		}
	}
}

// peerNodes are the nodes a policy peer stands for; a peer the check cannot name is a
// problem, not a pass.
func (s *set) peerNodes(pid string, p *networkingv1.NetworkPolicy, peer networkingv1.NetworkPolicyPeer, selected func(metav1.LabelSelector) []Node) []Node {
	switch {
	case peer.IPBlock != nil:
		ones, bits := 0, 0
		if _, n, err := parseCIDR(peer.IPBlock.CIDR); err == nil {
			ones, bits = n.Mask.Size()
		}
		node := Node(p.Annotations[externalAnnotation])
		if node != Postgres && node != Redis {
			s.fail("network", pid, "ipBlock %s stands for no node; name it in the %s annotation", peer.IPBlock.CIDR, externalAnnotation)
			return nil
		}
		if bits == 0 || ones < bits/2 {
			s.fail("network", pid, "ipBlock %s is wider than a server's address", peer.IPBlock.CIDR)
			return nil
		}
		return []Node{node}
	case peer.NamespaceSelector != nil:
		for _, o := range outside {
			nsMatch := len(peer.NamespaceSelector.MatchExpressions) == 0 &&
				maps.Equal(peer.NamespaceSelector.MatchLabels, map[string]string{"kubernetes.io/metadata.name": o.namespace})
			var podMatch bool
			if o.pods == nil {
				podMatch = peer.PodSelector == nil
			} else {
				podMatch = peer.PodSelector != nil && len(peer.PodSelector.MatchExpressions) == 0 && maps.Equal(peer.PodSelector.MatchLabels, o.pods)
			}
			if nsMatch && podMatch {
				return []Node{o.node}
			}
		}
		s.fail("network", pid, "a peer in other namespaces the check does not know: %v", peer.NamespaceSelector)
		return nil
	case peer.PodSelector != nil:
		return selected(*peer.PodSelector)
	}
	return nil
}

func sortedKeys(m map[edgeKey]bool) []edgeKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b edgeKey) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return keys
}

func parseCIDR(s string) (net.IP, *net.IPNet, error) { return net.ParseCIDR(s) }
