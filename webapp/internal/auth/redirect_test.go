package auth_test

import (
	"testing"

	"example.com/shop/webapp/internal/auth"
)

func TestSafeReturnPath(t *testing.T) {
	kept := []string{"/", "/cart", "/orders/123?page=2", "/search?q=a%20b", "/a/b/c#frag", "/ok?next=//still-a-query"}
	for _, p := range kept {
		if got := auth.SafeReturnPath(p); got != p {
			t.Errorf("SafeReturnPath(%q) = %q, want it kept", p, got)
		}
	}
	refused := []string{
		"", "cart", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "\\/evil.example",
		"https://evil.example/", "HTTPS://evil.example", "http:/evil.example", "javascript:alert(1)", " javascript:alert(1)",
		"data:text/html,<script>", "/%2F%2Fevil.example", "/%2f%2fevil.example", "/%252F%252Fevil.example", "/%5Cevil.example",
		"%2F%2Fevil.example", "/\t/evil.example", "/%09/evil.example", "/\n/evil.example", "/%0d%0aSet-Cookie:x=y",
		"/login", "/login?next=/x", "/logout", "/auth/callback?code=c&state=s", "/%ZZ", string(make([]byte, 3000)),
	}
	for _, p := range refused {
		if got := auth.SafeReturnPath(p); got != "/" {
			t.Errorf("SafeReturnPath(%q) = %q, want /", p, got)
		}
	}
}
