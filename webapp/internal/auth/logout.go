package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// EndSession is how the browser ends the Keycloak session (OpenID Connect RP-Initiated
// Logout 1.0): a form the browser posts to Action, Keycloak's end-session endpoint, with
// Fields. It is a POST rather than a redirect because the ID token goes along as
// id_token_hint, and in a URL it would stay in the browser's history and in the logs of
// every proxy on the way; the specification lets the form be posted.
type EndSession struct {
	Action string
	Fields []FormField
}

// FormField is one hidden field of a form, in the order it is written.
type FormField struct {
	Name, Value string
}

// EndSession returns the form that logs the browser out of Keycloak with idToken as hint
// and the registered post-logout URI, or nil when the realm has no end-session endpoint.
// Without an ID token Keycloak asks the user to confirm the logout.
func (c *Client) EndSession(ctx context.Context, idToken string) (*EndSession, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	if ep.endSession == "" {
		return nil, nil
	}
	f := &EndSession{Action: ep.endSession, Fields: []FormField{
		{Name: "client_id", Value: c.cfg.ClientID},
		{Name: "post_logout_redirect_uri", Value: c.logoutTo},
	}}
	if idToken != "" {
		f.Fields = append(f.Fields, FormField{Name: "id_token_hint", Value: idToken})
	}
	return f, nil
}

// BackchannelLogoutEvent is the `events` member that marks a logout token (OpenID Connect
// Back-Channel Logout 1.0, section 2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenMaxAge bounds how old (by `iat`) a logout token may be. Its `jti` must be
// remembered a little longer than this to refuse a replay.
const LogoutTokenMaxAge = 5 * time.Minute

// Logout is a verified logout token: end the sessions of SessionID, or of Subject when
// the token names no session.
type Logout struct {
	SessionID string
	Subject   string
	// ID is the token's `jti`, for refusing a replay.
	ID       string
	IssuedAt time.Time
}

// VerifyLogoutToken checks a logout token as the specification asks: signed by the realm,
// issued by it to this client, recent, with the back-channel logout event, without a
// nonce (so an ID token cannot pass for one), naming a session or a subject.
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (*Logout, error) {
	v := oidc.NewVerifier(c.cfg.Issuer, c.keys, &oidc.Config{
		ClientID:             c.cfg.ClientID,
		SupportedSigningAlgs: []string{oidc.RS256},
		// `exp` is optional in logout tokens (Keycloak sets it); it is checked below when
		// present, and `iat` bounds the age either way.
		SkipExpiryCheck: true,
	})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: logout token: %v", ErrInvalidToken, err)
	}
	var cl struct {
		SessionID string                     `json:"sid"`
		ID        string                     `json:"jti"`
		Events    map[string]json.RawMessage `json:"events"`
		Nonce     *json.RawMessage           `json:"nonce"`
		IssuedAt  *float64                   `json:"iat"`
		Expiry    *float64                   `json:"exp"`
	}
	if err := tok.Claims(&cl); err != nil {
		return nil, fmt.Errorf("%w: logout token claims: %v", ErrInvalidToken, err)
	}
	now := time.Now()
	event, ok := cl.Events[BackchannelLogoutEvent]
	var obj map[string]json.RawMessage
	switch {
	case !ok || json.Unmarshal(event, &obj) != nil:
		return nil, fmt.Errorf("%w: not a back-channel logout token", ErrInvalidToken)
	case cl.Nonce != nil:
		return nil, fmt.Errorf("%w: a logout token must not carry a nonce", ErrInvalidToken)
	case cl.SessionID == "" && tok.Subject == "":
		return nil, fmt.Errorf("%w: a logout token must name a session or a subject", ErrInvalidToken)
	case cl.IssuedAt == nil:
		return nil, fmt.Errorf("%w: a logout token must carry iat", ErrInvalidToken)
	}
	iat := time.Unix(int64(*cl.IssuedAt), 0)
	switch {
	case iat.After(now.Add(c.cfg.Leeway)):
		return nil, fmt.Errorf("%w: logout token issued in the future", ErrInvalidToken)
	case cl.Expiry != nil && now.Add(-c.cfg.Leeway).After(time.Unix(int64(*cl.Expiry), 0)):
		return nil, fmt.Errorf("%w: logout token expired", ErrInvalidToken)
	case now.Sub(iat) > LogoutTokenMaxAge+c.cfg.Leeway:
		return nil, fmt.Errorf("%w: logout token too old", ErrInvalidToken)
	}
	return &Logout{SessionID: cl.SessionID, Subject: tok.Subject, ID: cl.ID, IssuedAt: iat}, nil
}
