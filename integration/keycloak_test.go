package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"example.com/shop/integration/harness"
	"example.com/shop/platform/authn"
	"example.com/shop/platform/svcauth"
)

// TestKeycloakRealmAndAuthn logs in to the real Keycloak, started from the realm file,
// through its login form over plain HTTP (PKCE, no password grant) and shows what
// platform/authn makes of the tokens it issues. The login session stops at the redirect to
// the webapp and takes the code from it.
func TestKeycloakRealmAndAuthn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc := shop.Keycloak
	webappURL := shop.WebappURL

	verifier := func(audience string) *authn.Verifier {
		v, err := authn.NewVerifier(authn.Config{Issuer: kc.Issuer(), Audience: audience})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	api := verifier("shop-api")

	login := func(t *testing.T, u harness.User, scopes ...string) (*harness.LoginSession, string, error) {
		t.Helper()
		s, err := harness.NewLoginSession(ctx, kc.Issuer(), harness.APITester, harness.APITesterSecret, webappURL+"/auth/callback")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Login(ctx, u.Name, u.Password, scopes...)
		if err != nil {
			return s, "", err
		}
		return s, tok.AccessToken, nil
	}

	t.Run("shopper token is accepted with the USER role", func(t *testing.T) {
		_, token, err := login(t, harness.Alice)
		if err != nil {
			t.Fatal(err)
		}
		p, err := api.Verify(ctx, token)
		if err != nil {
			t.Fatalf("authn refused a real Keycloak token: %v", err)
		}
		if p.Username != "alice" || !p.HasRole("USER") || p.HasRole("ADMIN") || p.ClientID != harness.APITester || p.HasScope("admin:read") {
			t.Fatalf("principal %+v", p)
		}
		if _, err := verifier("realm-management").Verify(ctx, token); err == nil {
			t.Fatal("a verifier for audience realm-management accepted a shop-api token")
		}
		if _, err := api.Verify(ctx, tamper(t, token)); err == nil {
			t.Fatal("a tampered copy was accepted")
		}
	})

	t.Run("ID token is refused as an access token", func(t *testing.T) {
		s, err := harness.NewLoginSession(ctx, kc.Issuer(), harness.APITester, harness.APITesterSecret, webappURL+"/auth/callback")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Login(ctx, harness.Bob.Name, harness.Bob.Password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.Verify(ctx, tok.Extra("id_token").(string)); err == nil {
			t.Fatal("an ID token was accepted as an access token")
		}
		if _, err := api.Verify(ctx, tok.RefreshToken); err == nil {
			t.Fatal("a refresh token was accepted as an access token")
		}
	})

	t.Run("only ADMIN accounts obtain admin:read", func(t *testing.T) {
		if _, _, err := login(t, harness.Alice, "admin:read"); !errors.Is(err, harness.ErrAccessDenied) || !strings.Contains(err.Error(), "ADMIN") {
			t.Fatalf("alice asking for admin:read: err = %v, want access denied", err)
		}
		s, token, err := login(t, harness.Ada)
		if err != nil {
			t.Fatal(err)
		}
		p, err := api.Verify(ctx, token)
		if err != nil || !p.HasRole("ADMIN") || p.HasScope("admin:read") {
			t.Fatalf("ada's normal login: %+v, %v", p, err)
		}
		// Step-up on the existing SSO session, as the webapp does when the admin console opens.
		tok, err := s.Authorize(ctx, "admin:read")
		if err != nil {
			t.Fatal(err)
		}
		if p, err = api.Verify(ctx, tok.AccessToken); err != nil || !p.HasScope("admin:read") {
			t.Fatalf("ada's step-up token: %+v, %v", p, err)
		}
	})

	t.Run("no client allows the password grant", func(t *testing.T) {
		for _, client := range []struct{ id, secret string }{
			{harness.APITester, harness.APITesterSecret}, {"webapp", ""}, {"order-service", harness.OrderServiceSecret}, {"admin-cli", ""}, {"account", ""},
		} {
			form := url.Values{"grant_type": {"password"}, "client_id": {client.id}, "username": {"alice"}, "password": {harness.Alice.Password}}
			if client.secret != "" {
				form.Set("client_secret", client.secret)
			}
			resp, err := http.PostForm(kc.Issuer()+"/protocol/openid-connect/token", form)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				AccessToken string `json:"access_token"`
				Error       string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode < 400 || body.AccessToken != "" {
				t.Errorf("%s: the password grant answered %d with a token", client.id, resp.StatusCode)
			}
		}
	})

	t.Run("order-service gets a payment-service token by client credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "order-service", ClientSecret: harness.OrderServiceSecret,
			TokenURL: kc.Issuer() + "/protocol/openid-connect/token"}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := verifier("payment-service").Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("payment-service verifier refused the service token: %v", err)
		}
		if !p.HasRole("SERVICE") || p.HasRole("USER") || p.ClientID != "order-service" {
			t.Fatalf("service principal %+v", p)
		}
		if _, err := api.Verify(ctx, tok.AccessToken); err == nil {
			t.Fatal("the shop-api verifier accepted a token for payment-service")
		}
	})

	t.Run("order-service exchanges a shopper's token for one good at payment-service alone", func(t *testing.T) {
		_, token, err := login(t, harness.Alice)
		if err != nil {
			t.Fatal(err)
		}
		shopper, err := api.Verify(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		exchanger := func(client, secret, audience string) *svcauth.Exchanger {
			return svcauth.NewExchanger(svcauth.Config{TokenURL: kc.Issuer() + "/protocol/openid-connect/token",
				ClientID: client, ClientSecret: secret}, audience)
		}
		narrowed, err := exchanger("order-service", harness.OrderServiceSecret, "payment-service").Exchange(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		p, err := verifier("payment-service").Verify(ctx, narrowed)
		if err != nil {
			t.Fatalf("payment-service verifier refused the exchanged token: %v", err)
		}
		if p.Subject != shopper.Subject || !p.HasRole("USER") || p.HasRole("SERVICE") || p.ClientID != "order-service" {
			t.Fatalf("exchanged principal %+v, want alice (USER) by order-service", p)
		}
		// Good at the payment service alone: the API's edge and the order service refuse it.
		for _, aud := range []string{"shop-api", "order-service"} {
			if _, err := verifier(aud).Verify(ctx, narrowed); err == nil {
				t.Errorf("a verifier for audience %s accepted the token exchanged for payment-service", aud)
			}
		}
		if st := apiGet(t, narrowed, "/api/orders", nil); st != http.StatusUnauthorized {
			t.Errorf("the gateway answered the exchanged token %d, want 401", st)
		}
		// The payment service exchanges it in turn to read the order as alice.
		onward, err := exchanger("payment-service", harness.PaymentServiceSecret, "order-service").Exchange(ctx, narrowed)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := verifier("order-service").Verify(ctx, onward); err != nil || p.Subject != shopper.Subject || !p.HasRole("USER") {
			t.Fatalf("payment's exchange for order-service: %+v, %v", p, err)
		}

		refused := []struct {
			name, client, secret, audience, token string
		}{
			{"the API tester (exchange not enabled for it)", harness.APITester, harness.APITesterSecret, "payment-service", token},
			{"an audience order-service may not ask for", "order-service", harness.OrderServiceSecret, "webapp", token},
			{"the API audience itself", "order-service", harness.OrderServiceSecret, "shop-api", token},
			{"a forged token (roles changed, signature kept)", "order-service", harness.OrderServiceSecret, "payment-service", tamper(t, token)},
		}
		for _, tc := range refused {
			got, err := exchanger(tc.client, tc.secret, tc.audience).Exchange(ctx, tc.token)
			if !errors.Is(err, svcauth.ErrExchangeRefused) || got != "" {
				t.Errorf("%s: %v, want refused", tc.name, err)
			}
		}
	})
}

// tamper flips the token's roles to ADMIN and keeps the original signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["realm_access"] = map[string]any{"roles": []string{"USER", "ADMIN"}}
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
