package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestEverythingListensOnLoopback: every listener of the local stack is given a loopback
// address. A listener the stack does not configure would take its service's default, which
// is every interface, so each one the services and Keycloak have must be set here.
func TestEverythingListensOnLoopback(t *testing.T) {
	want := map[string]bool{
		"KC_HTTP_HOST": true, "ORDER_ADDR": true, "ORDER_INTERNAL_ADDR": true,
		"PAYMENT_ADDR": true, "PAYMENT_INTERNAL_ADDR": true, "GATEWAY_ADDR": true, "WEBAPP_ADDR": true,
	}
	for _, s := range stack {
		for _, kv := range s.env {
			name, value, _ := strings.Cut(kv, "=")
			host := value
			switch {
			case name == "KC_HTTP_HOST":
			case strings.HasSuffix(name, "_ADDR"):
				var err error
				if host, _, err = net.SplitHostPort(value); err != nil {
					t.Errorf("%s: %s=%q: %v", s.name, name, value, err)
					continue
				}
			default:
				continue
			}
			if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
				t.Errorf("%s: %s=%q does not bind to loopback only", s.name, name, value)
			}
			delete(want, name)
		}
	}
	for name := range want {
		t.Errorf("%s is not set: the listener would bind every interface", name)
	}
}
