// Package web serves the shop's pages and the admin console: server-rendered HTML from
// embedded templates, one embedded stylesheet, and no script but the one that posts the
// logout form to Keycloak.
//
// Every route is declared once in routes.go with who may use it (public, shopper, admin).
// Around the routes: security headers and a Content-Security-Policy that allows no script
// (the logout page's allows the webapp's own), Cache-Control: no-store on every page (they
// all carry the session's cart or a CSRF token), CSRF protection bound to the session on
// every state-changing form, and one place that turns errors, including the API's, into
// pages a person can act on.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/helmet"

	"example.com/shop/platform/authn"
	"example.com/shop/platform/problem"
	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
)

const (
	roleAdmin     = "ADMIN"
	csrfLocalsKey = "shop.csrf"
	csrfField     = "_csrf"
	callerKey     = "shop.caller"
	// refreshAhead refreshes an access token this long before it expires, so it does not
	// expire between the check and the gateway's.
	refreshAhead = 30 * time.Second
)

// Deps are what the handlers need.
type Deps struct {
	Log      *slog.Logger
	Sessions *session.Manager
	Auth     *auth.Client
	API      *gateway.Client
	// Issuer is the realm URL the browser uses; forms may redirect there (login, logout).
	Issuer string
	// Secure is true when the webapp is served over HTTPS (cookies get Secure and __Host-).
	Secure bool
	// SessionIdle is the idle timeout; CSRF tokens live as long.
	SessionIdle time.Duration
}

type handlers struct {
	Deps
	pages pages
	now   func() time.Time
	// logoutPolicy is the Content-Security-Policy of the logout page, the only page with a
	// script (static/logout.js).
	logoutPolicy string
}

// Mount installs the webapp's middleware and routes on app, which platform/server.New
// built (request ids, access log, recovery, probes and metrics come from there).
func Mount(app *fiber.App, d Deps) error {
	p, err := loadPages()
	if err != nil {
		return err
	}
	issuer, err := url.Parse(d.Issuer)
	if err != nil || issuer.Host == "" {
		return fmt.Errorf("web: issuer %q is not a URL", d.Issuer)
	}
	// No script of any kind; styles only from this origin; forms post here, and may be
	// redirected or posted to Keycloak (login when checking out, logout), which browsers
	// check against form-action too.
	policy := "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self' " + issuer.Scheme + "://" + issuer.Host + "; " +
		"frame-ancestors 'none'; base-uri 'none'"
	h := &handlers{Deps: d, pages: p, now: time.Now, logoutPolicy: policy + "; script-src 'self'"}

	app.Use(helmet.New(helmet.Config{
		ContentSecurityPolicy: policy,
		// same-origin, not helmet's no-referrer: the CSRF middleware checks the Referer of
		// HTTPS form posts, and a failed refresh uses it to return the user to their page.
		ReferrerPolicy:   "same-origin",
		XFrameOptions:    "DENY",
		HSTSMaxAge:       31536000,
		PermissionPolicy: "camera=(), microphone=(), geolocation=(), payment=()",
	}))
	app.Use("/static", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(staticFS), PathPrefix: "static"}))

	// Keycloak's server-to-server calls: no browser, so no session and no CSRF token.
	app.Post("/auth/backchannel-logout", h.backchannelLogout)
	// The public keys of the webapp's client assertions, which the realm fetches.
	app.Get(auth.JWKSPath, h.jwks)

	app.Use(h.errorPages, noStore)
	// One request of a session at a time, before the CSRF middleware, which saves the
	// session record too (session.Manager.Serialize).
	app.Use(d.Sessions.Serialize())
	app.Use(csrf.New(csrf.Config{
		KeyLookup:         "form:" + csrfField,
		CookieName:        cookieName("shop_csrf", d.Secure),
		CookiePath:        "/",
		CookieSecure:      d.Secure,
		CookieHTTPOnly:    true,
		CookieSameSite:    "Lax",
		CookieSessionOnly: true,
		Expiration:        d.SessionIdle,
		Session:           d.Sessions.Store(),
		SessionKey:        "shop.csrf",
		ContextKey:        csrfLocalsKey,
		ErrorHandler: func(*fiber.Ctx, error) error {
			return &pageError{Status: fiber.StatusForbidden, Heading: "This form has expired",
				Message: "The form was open too long, or it came from another site. Go back, reload the page and try again."}
		},
	}))
	app.Use(d.Sessions.Middleware(), h.identify)

	for _, r := range h.routes() {
		if r.access < public || r.access > admin {
			return fmt.Errorf("web: route %s %s has no access level", r.method, r.path)
		}
		if strings.HasPrefix(r.path, "/admin") && r.access != admin {
			return fmt.Errorf("web: admin route %s %s is not restricted to admins", r.method, r.path)
		}
		chain := []fiber.Handler{}
		switch r.access {
		case shopper:
			chain = append(chain, h.requireLogin)
		case admin:
			chain = append(chain, h.requireLogin, h.requireAdmin)
		}
		app.Add(r.method, r.path, append(chain, r.handler)...)
	}
	return nil
}

func cookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// noStore keeps every page out of shared and browser caches: each carries the session's
// cart, a CSRF token or the user's data.
func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// identify names the logged-in user to the access log (subject only, never a token).
func (h *handlers) identify(c *fiber.Ctx) error {
	if st := session.From(c); st.LoggedIn() {
		authn.WithPrincipal(c, &authn.Principal{Subject: st.User.Subject, Username: st.User.Username, ClientID: "webapp"})
	}
	return c.Next()
}

// requireLogin lets logged-in users through with a fresh access token. An anonymous user is
// sent to log in and brought back; so is one whose refresh token no longer works, with the
// cart kept. When Keycloak is down the user is asked to try again, still logged in.
func (h *handlers) requireLogin(c *fiber.Ctx) error {
	st := session.From(c)
	if !st.LoggedIn() {
		return h.toLogin(c, "")
	}
	if h.now().Add(refreshAhead).After(st.Tokens.Expiry) {
		u, t, err := h.Auth.Refresh(c.UserContext(), st.User, st.Tokens)
		switch {
		case err == nil:
			st.User, st.Tokens = u, t
		case errors.Is(err, auth.ErrUnavailable):
			h.Log.Warn("token refresh failed; login service unavailable", "err", err)
			return unavailable("The login service is not answering right now. You are still logged in; please try again in a moment.")
		default:
			h.Log.Info("token refresh refused; logging the user in again", "sub", st.User.Subject, "err", err)
			st.LogOut()
			return h.toLogin(c, "Your session has ended. Please log in again.")
		}
	}
	key, err := auth.ProofKey(st.Tokens)
	if err != nil {
		// A session from before token binding: its token is useless at the gateway.
		st.LogOut()
		return h.toLogin(c, "Your session has ended. Please log in again.")
	}
	c.Locals(callerKey, h.API.AsBound(st.Tokens.Access, key))
	return c.Next()
}

// requireAdmin lets ADMIN users through with a token that carries admin:read, getting one
// by step-up when the current token lacks it. Everyone else gets the 403 page: no API call
// is made, and no admin:read request is sent to Keycloak for them (the realm counts each
// refused request as a failed login).
func (h *handlers) requireAdmin(c *fiber.Ctx) error {
	u := session.From(c).User
	if !u.HasRole(roleAdmin) {
		return forbidden("The admin console is for administrators only.")
	}
	if !u.HasScope(auth.ScopeAdminRead) {
		return c.Redirect(loginURL(returnPath(c))+"&step=admin", fiber.StatusSeeOther)
	}
	return c.Next()
}

// toLogin sends the user to log in and back to where they were.
func (h *handlers) toLogin(c *fiber.Ctx, flash string) error {
	if flash != "" {
		session.From(c).AddFlash(session.FlashAlert, flash)
	}
	return c.Redirect(loginURL(returnPath(c)), fiber.StatusSeeOther)
}

// returnPath is the page to come back to: the page itself for a GET, and for a form post
// the page the form was on (its same-origin Referer), since a POST cannot be replayed by a
// redirect.
func returnPath(c *fiber.Ctx) string {
	if c.Method() == fiber.MethodGet {
		return auth.SafeReturnPath(requestPath(c))
	}
	ref, err := url.Parse(c.Get(fiber.HeaderReferer))
	if err != nil || ref.Host != c.Hostname() {
		return "/"
	}
	return auth.SafeReturnPath(ref.RequestURI())
}

// requestPath is the request's path and query, whatever form the request line had.
func requestPath(c *fiber.Ctx) string {
	p := c.Path()
	if q := c.Request().URI().QueryString(); len(q) > 0 {
		p += "?" + string(q)
	}
	return p
}

// caller is the API client of the request's user (set by requireLogin).
func caller(c *fiber.Ctx) *gateway.Caller { return c.Locals(callerKey).(*gateway.Caller) }

// ctx is the request's context, carrying its request id to the API.
func ctx(c *fiber.Ctx) context.Context {
	id, _ := c.Locals(problem.RequestIDKey).(string)
	return gateway.WithRequestID(c.UserContext(), id)
}

// validID accepts the ids the API uses (UUIDs) and nothing that could alter an API path.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "abcdefABCDEF0123456789-") == ""
}
