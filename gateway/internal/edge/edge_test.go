package edge_test

import (
	"net/netip"
	"strings"
	"testing"

	"example.com/shop/gateway/internal/edge"
	"example.com/shop/platform/config"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustPrefixes(t *testing.T, list ...string) []netip.Prefix {
	t.Helper()
	p, errs := config.ParsePrefixes(list)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return p
}

// TestResolve is the spoofing table: what a client writes into X-Forwarded-For must never
// become its address unless a trusted proxy wrote it.
func TestResolve(t *testing.T) {
	trusted := edge.TrustedProxies(mustPrefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48"))
	cases := []struct {
		name     string
		peer     string
		xff      []string
		client   string
		forwards string
	}{
		{"direct client, no header", "203.0.113.7", nil, "203.0.113.7", "203.0.113.7"},
		{"direct client spoofs XFF", "203.0.113.7", []string{"198.51.100.1"}, "203.0.113.7", "203.0.113.7"},
		{"direct client spoofs a trusted address", "203.0.113.7", []string{"10.0.0.1"}, "203.0.113.7", "203.0.113.7"},
		{"through a trusted proxy", "10.0.0.2", []string{"203.0.113.7"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"client prepends a fake hop behind a trusted proxy", "10.0.0.2", []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"fake hop in a separate header line", "10.0.0.2", []string{"198.51.100.1", "203.0.113.7"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"two trusted proxies", "10.0.0.2", []string{"203.0.113.7, 10.1.1.1"}, "203.0.113.7", "203.0.113.7, 10.1.1.1, 10.0.0.2"},
		{"trusted proxy, no header", "10.0.0.2", nil, "10.0.0.2", "10.0.0.2"},
		{"only trusted hops", "10.0.0.2", []string{"10.9.9.9"}, "10.9.9.9", "10.9.9.9, 10.0.0.2"},
		{"garbage hop stops the walk", "10.0.0.2", []string{"203.0.113.7, not-an-ip"}, "10.0.0.2", "10.0.0.2"},
		{"garbage left of the client is never read", "10.0.0.2", []string{"<script>, 203.0.113.7"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"hop with a port", "10.0.0.2", []string{"203.0.113.7:4711"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"IPv6 hop in brackets", "10.0.0.2", []string{"[2001:db8::7]:443"}, "2001:db8::7", "2001:db8::7, 10.0.0.2"},
		{"IPv4-mapped peer", "::ffff:10.0.0.2", []string{"203.0.113.7"}, "203.0.113.7", "203.0.113.7, 10.0.0.2"},
		{"IPv6 trusted proxy", "2001:db8:ffff::1", []string{"2001:db8::7"}, "2001:db8::7", "2001:db8::7, 2001:db8:ffff::1"},
		{"empty entries", "10.0.0.2", []string{" , "}, "10.0.0.2", "10.0.0.2"},
	}
	for _, tc := range cases {
		cl := trusted.Resolve(addr(tc.peer), tc.xff)
		if cl.IP != addr(tc.client) || cl.ForwardedFor() != tc.forwards {
			t.Errorf("%s: client %s, X-Forwarded-For %q; want %s, %q", tc.name, cl.IP, cl.ForwardedFor(), tc.client, tc.forwards)
		}
	}
}

func TestIPRules(t *testing.T) {
	rules := edge.IPRules{Allow: mustPrefixes(t, "10.0.0.0/8", "2001:db8::/32"), Deny: mustPrefixes(t, "10.6.6.0/24")}
	for ip, want := range map[string]bool{
		"10.1.2.3":        true,
		"::ffff:10.1.2.3": true,
		"10.6.6.6":        false, // deny wins over allow
		"192.0.2.1":       false,
		"2001:db8::1":     true,
		"2001:db9::1":     false,
	} {
		if got := rules.Permits(addr(ip)); got != want {
			t.Errorf("Permits(%s) = %v, want %v", ip, got, want)
		}
	}
	if rules.Permits(netip.Addr{}) {
		t.Error("an unknown address passed an allowlist")
	}
	denyOnly := edge.IPRules{Deny: mustPrefixes(t, "192.0.2.0/24")}
	if !denyOnly.Permits(addr("198.51.100.1")) || denyOnly.Permits(addr("192.0.2.9")) {
		t.Error("deny-only rules")
	}
	if !(edge.IPRules{}).Empty() || denyOnly.Empty() {
		t.Error("Empty")
	}
}

func TestValidateOrigins(t *testing.T) {
	if errs := edge.ValidateOrigins([]string{"https://shop.example", "http://localhost:8080"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, bad := range []string{"*", "https://*.example.com", "null", "shop.example", "https://shop.example/",
		"https://shop.example/path", "ftp://shop.example", "https://user@shop.example", "https://shop.example?x=1"} {
		if errs := edge.ValidateOrigins([]string{bad}); len(errs) != 1 {
			t.Errorf("%q: errors %v, want one", bad, errs)
		} else if strings.Contains(errs[0].Error(), "%!") {
			t.Errorf("%q: malformed message %v", bad, errs[0])
		}
	}
}
