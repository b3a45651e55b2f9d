package auth_test

import (
	"context"
	"strings"
	"testing"

	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/oidctest"
)

// TestEndSessionIsAFormNotAURL: the logout goes to the realm's end-session endpoint as a
// form whose fields carry the ID token as hint, the client and the registered post-logout
// URI; the endpoint's URL itself carries nothing, so the token never lands in a URL.
func TestEndSessionIsAFormNotAURL(t *testing.T) {
	kc := newProvider(t)
	c := newClient(t, kc, "")
	_, tok := login(t, c, kc, oidctest.Alice)

	form, err := c.EndSession(context.Background(), tok.ID)
	if err != nil || form == nil {
		t.Fatalf("end session: %+v %v", form, err)
	}
	if form.Action != kc.URL+"/protocol/openid-connect/logout" {
		t.Fatalf("action %q, want the realm's end-session endpoint without a query", form.Action)
	}
	want := []auth.FormField{
		{Name: "client_id", Value: "webapp"},
		{Name: "post_logout_redirect_uri", Value: webappURL + auth.PostLogoutPath},
		{Name: "id_token_hint", Value: tok.ID},
	}
	if len(form.Fields) != len(want) {
		t.Fatalf("fields %+v, want %+v", form.Fields, want)
	}
	for i := range want {
		if form.Fields[i] != want[i] {
			t.Fatalf("field %d is %+v, want %+v", i, form.Fields[i], want[i])
		}
	}
	if strings.Contains(form.Action, tok.ID) {
		t.Fatal("the ID token is in the form's URL")
	}

	// Without an ID token there is no hint (Keycloak then asks the user to confirm).
	bare, err := c.EndSession(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bare.Fields {
		if f.Name == "id_token_hint" {
			t.Fatalf("a hint without a token: %+v", bare.Fields)
		}
	}
}
