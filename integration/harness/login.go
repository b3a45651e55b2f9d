package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// LoginSession signs in through Keycloak's real login form over plain HTTP, the way a
// browser would: authorization code with PKCE S256, state and nonce, cookies kept between
// requests so a second authorization rides on the SSO session. It never uses the password
// grant, which the realm refuses.
type LoginSession struct {
	OAuth2   oauth2.Config
	Provider *oidc.Provider
	client   *http.Client
}

// NewLoginSession discovers the realm at issuer and prepares a session for client.
func NewLoginSession(ctx context.Context, issuer, clientID, secret, redirectURL string) (*LoginSession, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	s := &LoginSession{
		Provider: p,
		OAuth2: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: redirectURL},
	}
	s.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		// Stop at the redirect back to the client: nothing listens there; the code is in it.
		if strings.HasPrefix(req.URL.String(), redirectURL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return s, nil
}

// ErrAccessDenied is returned when Keycloak refuses the authorization (error=access_denied).
var ErrAccessDenied = errors.New("access denied by Keycloak")

// Login fills in the login form with username and password and returns the tokens.
func (s *LoginSession) Login(ctx context.Context, username, password string, scopes ...string) (*oauth2.Token, error) {
	return s.authorize(ctx, scopes, func(page *http.Response) (*http.Response, error) {
		action, err := formAction(page.Body)
		if err != nil {
			return nil, err
		}
		form := url.Values{"username": {username}, "password": {password}, "credentialId": {""}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return s.client.Do(req)
	})
}

// Authorize asks for tokens again on the existing SSO session, with no form to fill in.
func (s *LoginSession) Authorize(ctx context.Context, scopes ...string) (*oauth2.Token, error) {
	return s.authorize(ctx, scopes, func(page *http.Response) (*http.Response, error) {
		return nil, errors.New("Keycloak showed a login page although a session exists")
	})
}

func (s *LoginSession) authorize(ctx context.Context, scopes []string, fillIn func(*http.Response) (*http.Response, error)) (*oauth2.Token, error) {
	verifier := oauth2.GenerateVerifier()
	state, nonce := random(), random()
	cfg := s.OAuth2
	cfg.Scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if resp, err = fillIn(resp); err != nil {
			return nil, err
		}
		defer resp.Body.Close()
	}
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), cfg.RedirectURL) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 16000))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			// Keycloak's "Deny access" step shows its error page instead of redirecting.
			return nil, fmt.Errorf("%w: %s", ErrAccessDenied, pageText(body))
		}
		return nil, fmt.Errorf("no redirect back to the client (status %d): %s", resp.StatusCode, pageText(body))
	}
	q := loc.Query()
	if q.Get("state") != state {
		return nil, fmt.Errorf("state mismatch: sent %q, got %q", state, q.Get("state"))
	}
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return nil, fmt.Errorf("%w: %s", ErrAccessDenied, q.Get("error_description"))
		}
		return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := s.Provider.VerifierContext(ctx, &oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("id token: %w", err)
	}
	if idt.Nonce != nonce {
		return nil, errors.New("id token nonce mismatch")
	}
	return tok, nil
}

// formAction finds the action URL of Keycloak's login form (id kc-form-login).
func formAction(r io.Reader) (string, error) {
	doc, err := html.Parse(r)
	if err != nil {
		return "", err
	}
	var action string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			var id, act string
			for _, a := range n.Attr {
				switch a.Key {
				case "id":
					id = a.Val
				case "action":
					act = a.Val
				}
			}
			if id == "kc-form-login" {
				action = act
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" {
		return "", errors.New("no login form on the page")
	}
	return action, nil
}

// pageText reduces an HTML page to its visible words, for error messages.
func pageText(b []byte) string {
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		return string(b)
	}
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		if n.Type == html.TextNode {
			if s := strings.TrimSpace(n.Data); s != "" {
				sb.WriteString(s + " ")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return sb.String()
}

func random() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
