package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// KeycloakAdmin calls Keycloak's admin REST API as the bootstrap admin of the master realm,
// for what tests do as an operator would: shorten token lifetimes, end a user's sessions.
// (The password grant used here is the master realm's own admin-cli, not a shop client.)
type KeycloakAdmin struct {
	base, token string
}

// NewKeycloakAdmin logs in as the bootstrap admin (admin/admin in the test stack).
func NewKeycloakAdmin(ctx context.Context, kc *Keycloak) (*KeycloakAdmin, error) {
	form := url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"}, "username": {"admin"}, "password": {"admin"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, kc.URL+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := do(req, &tok); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	return &KeycloakAdmin{base: kc.URL + "/admin/realms/shop", token: tok.AccessToken}, nil
}

// Call sends method path (relative to /admin/realms/shop) with an optional JSON body and
// decodes the JSON answer into out when out is not nil.
func (a *KeycloakAdmin) Call(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(req, out)
}

// UserID returns the id of the user with the username.
func (a *KeycloakAdmin) UserID(ctx context.Context, username string) (string, error) {
	var users []struct {
		ID string `json:"id"`
	}
	if err := a.Call(ctx, http.MethodGet, "/users?exact=true&username="+url.QueryEscape(username), nil, &users); err != nil {
		return "", err
	}
	if len(users) != 1 {
		return "", fmt.Errorf("user %s: %d matches", username, len(users))
	}
	return users[0].ID, nil
}

func do(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
