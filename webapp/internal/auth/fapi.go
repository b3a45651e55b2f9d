package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"example.com/shop/platform/dpop"
	"example.com/shop/webapp/internal/session"
)

// The FAPI 2.0 half of the client, written here because golang.org/x/oauth2 and go-oidc
// have none of it: pushed authorization requests (RFC 9126), private_key_jwt client
// authentication (RFC 7523), DPoP-bound tokens (RFC 9449) and the `iss` check of the
// authorization response (RFC 9207). The realm's client policy refuses the webapp any
// request without them, so none of this is optional.

// maxAnswer bounds what is read from Keycloak's back-channel answers.
const maxAnswer = 1 << 20

// oauthError is an OAuth error answer (RFC 6749 section 5.2).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// post sends form to endpoint, authenticated with a fresh client assertion, and with a
// DPoP proof of key when key is set. When the server answers use_dpop_nonce with a
// DPoP-Nonce (RFC 9449 section 8), it is asked once more with the nonce in a new proof.
// A 4xx answer is ErrRejected (the grant or request is refused: log in again), anything
// else that is not 2xx is ErrUnavailable.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, key *dpop.Key, out any) error {
	assertion, err := c.cfg.Keys.assertion(c.cfg.ClientID, c.cfg.Issuer, time.Now())
	if err != nil {
		return err
	}
	form.Set("client_id", c.cfg.ClientID)
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", assertion)
	body := form.Encode()
	nonce := ""
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if key != nil {
			proof, err := key.Proof(http.MethodPost, endpoint, "", nonce)
			if err != nil {
				return err
			}
			req.Header.Set(dpop.Header, proof)
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("%w: %s answered with unreadable JSON: %v", ErrUnavailable, endpoint, err)
			}
			return nil
		}
		var oe oauthError
		_ = json.Unmarshal(raw, &oe)
		if next := resp.Header.Get(dpop.NonceHeader); oe.Code == dpop.CodeUseNonce && key != nil && next != "" && attempt == 0 {
			// The assertion's jti is spent only if the request got that far; a new one is
			// cheap and spares the question.
			if assertion, err = c.cfg.Keys.assertion(c.cfg.ClientID, c.cfg.Issuer, time.Now()); err != nil {
				return err
			}
			form.Set("client_assertion", assertion)
			body, nonce = form.Encode(), next
			continue
		}
		if resp.StatusCode < 500 {
			return fmt.Errorf("%w: %s (%s)", ErrRejected, oe.Code, oe.Description)
		}
		return fmt.Errorf("%w: %s answered %s", ErrUnavailable, endpoint, resp.Status)
	}
}

// pushAuthorization sends the authorization request of l to the PAR endpoint and returns
// its request_uri. The parameters never travel through the browser, where they could be
// read or changed; `dpop_jkt` binds the code to the login's DPoP key, so a stolen code is
// useless without it.
func (c *Client) pushAuthorization(ctx context.Context, ep *endpoints, l session.PendingLogin, key *dpop.Key) (string, error) {
	form := url.Values{
		"response_type":         {"code"},
		"redirect_uri":          {c.redirect},
		"scope":                 {strings.Join(c.scopes(l.StepUp), " ")},
		"state":                 {l.State},
		"nonce":                 {l.Nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(l.Verifier)},
		"code_challenge_method": {"S256"},
		"dpop_jkt":              {key.Thumbprint()},
	}
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	if err := c.post(ctx, ep.par, form, nil, &par); err != nil {
		// A refused push is the realm's configuration at odds with this client, not a
		// user's mistake: from the shopper's side it is an outage.
		if errors.Is(err, ErrRejected) {
			return "", fmt.Errorf("%w: pushed authorization request refused: %v", ErrUnavailable, err)
		}
		return "", err
	}
	if par.RequestURI == "" {
		return "", fmt.Errorf("%w: the PAR answer has no request_uri", ErrUnavailable)
	}
	return par.RequestURI, nil
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// token calls the token endpoint with a DPoP proof of key and checks that the access
// token came back bound (token_type DPoP, RFC 9449 section 5): a bearer token here would
// mean the binding silently failed, and the gateway would refuse it anyway.
func (c *Client) token(ctx context.Context, ep *endpoints, form url.Values, key *dpop.Key) (*oauth2.Token, error) {
	var tr tokenResponse
	if err := c.post(ctx, ep.token, form, key, &tr); err != nil {
		return nil, err
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, dpop.Scheme) {
		return nil, fmt.Errorf("%w: the token response is not a DPoP-bound token (token_type %q)", ErrInvalidToken, tr.TokenType)
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken}
	if tr.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return tok.WithExtra(map[string]any{"id_token": tr.IDToken}), nil
}

// CheckIssuer is the mix-up defence of RFC 9207: the authorization response must name
// the realm that the request went to. Keycloak sends `iss` (its discovery document says
// so); a response without it, or naming another issuer, is refused.
func (c *Client) CheckIssuer(ctx context.Context, iss string) error {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return err
	}
	if iss == "" && !ep.issParameter {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(iss), []byte(c.cfg.Issuer)) != 1 {
		return fmt.Errorf("%w: the authorization response names issuer %q", ErrInvalidToken, iss)
	}
	return nil
}

// JWKSPath is where the webapp serves the public keys of its client assertions; the
// realm's `jwks.url` for the webapp client points here.
const JWKSPath = "/.well-known/jwks.json"

// JWKS is the public key set to serve at JWKSPath.
func (c *Client) JWKS() jose.JSONWebKeySet { return c.cfg.Keys.JWKS() }

// ProofKey is the DPoP key the session's tokens are bound to, which signs the proof of
// every API call.
func ProofKey(t *session.Tokens) (*dpop.Key, error) {
	if t == nil {
		return nil, errors.New("auth: no tokens")
	}
	return dpop.ParseKey(t.DPoPKey)
}
