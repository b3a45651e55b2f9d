package auth_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"example.com/shop/platform/testkit"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/oidctest"
)

// TestOnlyCompactTokens: an ID token or a logout token signed by the realm but sent in the
// JWS JSON serialization is refused; the same tokens in compact form are accepted.
func TestOnlyCompactTokens(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	ctx := context.Background()

	logout := kc.LogoutToken("sid-1", "sub-1", nil)
	if _, err := c.VerifyLogoutToken(ctx, logout); err != nil {
		t.Fatalf("compact logout token: %v", err)
	}
	for name, general := range map[string]bool{"flattened": false, "general": true} {
		if _, err := c.VerifyLogoutToken(ctx, testkit.JWSJSON(t, logout, general, nil)); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("logout token, %s JSON: %v", name, err)
		}
	}

	for name, general := range map[string]bool{"flattened": false, "general": true} {
		kc.ReserializeID = func(compact string) string { return testkit.JWSJSON(t, compact, general, nil) }
		l := newLogin(t, false)
		to, err := c.AuthCodeURL(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := url.Parse(kc.Authorize(to, oidctest.Alice))
		if _, _, err := c.Exchange(ctx, back.Query().Get("code"), l); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("ID token, %s JSON: %v", name, err)
		}
	}
	kc.ReserializeID = nil
	if u, _ := login(t, c, kc, oidctest.Alice); u.Subject != oidctest.Alice.Subject {
		t.Fatalf("compact ID token: user %+v", u)
	}
}
