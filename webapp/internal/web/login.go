package web

import (
	"errors"
	"slices"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/session"
)

// login starts the authorization code flow: a fresh state, nonce and PKCE verifier are
// kept in the session, and the browser goes to Keycloak. With step=admin it asks for the
// admin:read scope on the existing Keycloak session (no form shown), but only for a user
// whose current token already has ADMIN: Keycloak counts every refused admin:read request
// as a failed login, so a shopper must never trigger one.
func (h *handlers) login(c *fiber.Ctx) error {
	st := session.From(c)
	next := auth.SafeReturnPath(c.Query("next"))
	stepUp := c.Query("step") == "admin" && st.LoggedIn()
	switch {
	case stepUp && !st.User.HasRole(roleAdmin):
		return forbidden("The admin console is for administrators only.")
	case stepUp && st.User.HasScope(auth.ScopeAdminRead), !stepUp && st.LoggedIn():
		return c.Redirect(next, fiber.StatusSeeOther)
	}
	l, err := auth.NewLogin(next, stepUp, h.now())
	if err != nil {
		return err
	}
	to, err := h.Auth.AuthCodeURL(c.UserContext(), l)
	if err != nil {
		h.Log.Warn("login unavailable", "err", err)
		return unavailable("Logging in is not possible right now. Please try again in a moment; your cart is kept.")
	}
	st.AddLogin(l)
	return c.Redirect(to, fiber.StatusSeeOther)
}

// loginFailed is the page for a login that did not complete.
func loginFailed(status int, msg string) *pageError {
	return &pageError{Status: status, Heading: "You are not logged in", Message: msg, LoginAgain: true}
}

// callback finishes a login: the state must name a login this session started (once),
// the answer must name the realm as its issuer, the code is exchanged with the PKCE
// verifier and a proof of the login's DPoP key, the ID token must verify and carry the
// login's nonce. Then the session gets a new id, so an id planted before the login is
// worthless, and the user goes back to where they started.
func (h *handlers) callback(c *fiber.Ctx) error {
	st := session.From(c)
	l, ok := st.TakeLogin(c.Query("state"), h.now())
	if code := c.Query("error"); code != "" {
		// Keycloak's error_description is not shown: anyone can craft this URL, so only
		// texts of our own appear on the page.
		h.Log.Info("login not completed at Keycloak", "request_id", c.Locals(problem.RequestIDKey), "error", code, "known_state", ok)
		if ok && l.StepUp && st.LoggedIn() {
			h.afterRefusedStepUp(c, st)
		}
		return loginFailed(fiber.StatusUnauthorized, keycloakError(code, ok && l.StepUp))
	}
	if !ok {
		h.Log.Warn("login callback with an unknown, used or expired state", "request_id", c.Locals(problem.RequestIDKey))
		return loginFailed(fiber.StatusBadRequest, "This login link has expired or was already used. Please log in again.")
	}
	code := c.Query("code")
	if code == "" {
		return loginFailed(fiber.StatusBadRequest, "The login service sent no answer. Please log in again.")
	}
	// RFC 9207: the answer must come from the realm the request went to (mix-up defence).
	if err := h.Auth.CheckIssuer(c.UserContext(), c.Query("iss")); err != nil {
		h.Log.Warn("login callback from another issuer", "request_id", c.Locals(problem.RequestIDKey), "err", err)
		return loginFailed(fiber.StatusBadRequest, "The login could not be verified. Please log in again.")
	}
	u, t, err := h.Auth.Exchange(c.UserContext(), code, l)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		h.Log.Warn("login: code exchange failed", "err", err)
		return unavailable("The login service is not answering right now. Please try again in a moment; your cart is kept.")
	case errors.Is(err, auth.ErrRejected):
		h.Log.Info("login: code refused", "err", err)
		return loginFailed(fiber.StatusBadRequest, "This login has expired or was already used. Please log in again.")
	case err != nil:
		h.Log.Error("login: tokens failed verification", "request_id", c.Locals(problem.RequestIDKey), "err", err)
		return loginFailed(fiber.StatusBadRequest, "The login could not be verified. Please log in again.")
	}
	st.LogIn(u, t)
	session.Rotate(c)
	next := auth.SafeReturnPath(l.Next)
	if l.StepUp && !u.HasScope(auth.ScopeAdminRead) {
		// Going on to /admin would ask for the scope again, in a loop.
		st.AddFlash(session.FlashAlert, "Admin access was not granted to this login.")
		next = "/"
	}
	h.Log.Info("login", "sub", u.Subject, "step_up", l.StepUp)
	return c.Redirect(next, fiber.StatusSeeOther)
}

// afterRefusedStepUp refreshes the tokens of a user whose step-up Keycloak refused: the
// ADMIN role in their token is probably stale (taken away since), and with fresh roles
// the console answers 403 instead of asking again, each refusal being a failed login.
func (h *handlers) afterRefusedStepUp(c *fiber.Ctx, st *session.State) {
	u, t, err := h.Auth.Refresh(c.UserContext(), st.User, st.Tokens)
	switch {
	case err == nil:
		st.User, st.Tokens = u, t
	case errors.Is(err, auth.ErrUnavailable):
		h.Log.Warn("refresh after a refused step-up failed", "err", err)
	default:
		st.LogOut()
	}
}

// keycloakError explains an OAuth error code from the authorization endpoint.
func keycloakError(code string, stepUp bool) string {
	switch {
	case code == "access_denied" && stepUp:
		return "The login service refused admin access for this account."
	case code == "access_denied":
		return "The login was cancelled, or the login service refused it."
	case slices.Contains([]string{"login_required", "interaction_required", "consent_required"}, code):
		return "You need to log in again."
	case code == "temporarily_unavailable" || code == "server_error":
		return "The login service is having trouble. Please try again in a moment."
	}
	return "The login did not complete."
}

// logout ends the local session (cart included) and then the Keycloak session, through
// RP-initiated logout with the ID token as hint, which brings the browser back to the
// shop's front page. The hint travels in the body of a form the page posts to Keycloak
// (auth.EndSession), never in a URL: a small script of the webapp's own submits it, and a
// Continue button does when scripts are off.
func (h *handlers) logout(c *fiber.Ctx) error {
	st := session.From(c)
	var idToken string
	loggedIn := st.LoggedIn()
	if loggedIn {
		idToken = st.Tokens.ID
	}
	session.Destroy(c)
	if !loggedIn {
		return c.Redirect("/", fiber.StatusSeeOther)
	}
	form, err := h.Auth.EndSession(c.UserContext(), idToken)
	if err != nil || form == nil {
		h.Log.Warn("logout at Keycloak not possible; logged out locally", "err", err)
		return c.Redirect("/", fiber.StatusSeeOther)
	}
	// This page alone may run a script, and only the webapp's own files: the one that
	// submits the form.
	c.Set(fiber.HeaderContentSecurityPolicy, h.logoutPolicy)
	return h.render(c, page{name: "logout", title: "Logging out", data: form})
}

// backchannelLogout is Keycloak telling the webapp that a login ended (logout elsewhere, an
// admin ending the user's sessions, expiry). A verified logout token ends every webapp
// session of that Keycloak session, or of that user when it names no session. Answers
// follow OpenID Connect Back-Channel Logout 1.0: 200 when done, 400 otherwise.
func (h *handlers) backchannelLogout(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	refuse := func(code, desc string) error {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": code, "error_description": desc})
	}
	raw := c.FormValue("logout_token")
	if raw == "" {
		return refuse("invalid_request", "logout_token is required")
	}
	lo, err := h.Auth.VerifyLogoutToken(c.UserContext(), raw)
	if err != nil {
		h.Log.Warn("back-channel logout refused", "request_id", c.Locals(problem.RequestIDKey), "err", err)
		return refuse("invalid_request", "the logout token is not valid")
	}
	if lo.ID != "" {
		first, err := h.Sessions.FirstUse(c.UserContext(), "logout-jti:"+lo.ID, auth.LogoutTokenMaxAge+2*refreshAhead)
		if err != nil {
			h.Log.Error("back-channel logout: recording jti", "err", err)
			return refuse("temporarily_unavailable", "the logout could not be recorded")
		}
		if !first {
			// Done already: Keycloak retrying, or a replay. Either way nothing more to end.
			return c.SendStatus(fiber.StatusOK)
		}
	}
	n, err := h.Sessions.EndSessions(c.UserContext(), lo.SessionID, lo.Subject)
	if err != nil {
		h.Log.Error("back-channel logout: ending sessions", "err", err)
		return refuse("temporarily_unavailable", "the sessions could not be ended")
	}
	h.Log.Info("back-channel logout", "sid", lo.SessionID, "sub", lo.Subject, "sessions", n)
	return c.SendStatus(fiber.StatusOK)
}

// jwks serves the public keys the webapp signs its client assertions with (private_key_jwt):
// the realm's `jwks.url` for the webapp client. Public by nature; cached briefly so a key
// rotation reaches the realm within minutes.
func (h *handlers) jwks(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(h.Auth.JWKS())
}
