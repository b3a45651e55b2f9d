package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	fibersession "github.com/gofiber/fiber/v2/middleware/session"
)

// Keys in the backend. Session records get a prefix of their own, so a cookie can only
// ever name a session record, never an index or a tombstone.
const (
	keyPrefix      = "webapp:"
	recordPrefix   = keyPrefix + "session:"
	bySIDPrefix    = keyPrefix + "by-sid:"
	bySubPrefix    = keyPrefix + "by-sub:"
	endedSIDPrefix = keyPrefix + "ended-sid:"
	endedSubPrefix = keyPrefix + "ended-sub:"
	oncePrefix     = keyPrefix + "once:"

	// stateKey is the State's key inside Fiber's session record; the CSRF middleware keeps
	// its token beside it.
	stateKey  = "shop.state"
	localsKey = "shop.session"
)

// Config configures a Manager.
type Config struct {
	Backend Backend
	// Idle ends a session after this long without a request.
	Idle time.Duration
	// Max ends a session this long after it was created or logged in, however active.
	Max time.Duration
	// Secure is true when the webapp is served over HTTPS: the cookie is then Secure and
	// named with the __Host- prefix, which browsers accept only from a secure origin, for
	// path /, without a Domain, so no subdomain can plant or overwrite it.
	Secure bool
	Log    *slog.Logger
}

// Manager loads and saves sessions around each request.
type Manager struct {
	store   *fibersession.Store
	backend Backend
	idle    time.Duration
	max     time.Duration
	cookie  string
	log     *slog.Logger
	now     func() time.Time
}

// NewManager returns a Manager over cfg.Backend.
func NewManager(cfg Config) *Manager {
	name := "shop_session"
	if cfg.Secure {
		name = "__Host-shop_session"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	store := fibersession.New(fibersession.Config{
		Expiration: cfg.Idle,
		Storage:    prefixed{storage: cfg.Backend, prefix: recordPrefix},
		KeyLookup:  "cookie:" + name,
		CookiePath: "/",
		// A browser-session cookie: the server decides when a session ends (idle and
		// absolute timeouts), the cookie only names it.
		CookieSessionOnly: true,
		CookieSecure:      cfg.Secure,
		CookieHTTPOnly:    true,
		CookieSameSite:    "Lax",
		// 128 random bits, as crypto/rand.Text gives them.
		KeyGenerator: rand.Text,
	})
	return &Manager{store: store, backend: cfg.Backend, idle: cfg.Idle, max: cfg.Max, cookie: name, log: cfg.Log, now: time.Now}
}

// Store is Fiber's session store, which the CSRF middleware binds its tokens to.
func (m *Manager) Store() *fibersession.Store { return m.store }

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.cookie }

// Ping reports whether the backend is usable.
func (m *Manager) Ping(ctx context.Context) error { return m.backend.Ping(ctx) }

// request is the session of one request.
type request struct {
	sess    *fibersession.Session
	state   *State
	loaded  []byte // the state as loaded: saved again only when it changed
	rotate  bool
	destroy bool
}

// Middleware loads the request's session before the handler and saves it after, if the
// handler changed it. A session past its absolute lifetime starts over, and a login that
// Keycloak ended (back-channel logout) is forgotten here.
func (m *Manager) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		sess, err := m.store.Get(c)
		if err != nil {
			return fmt.Errorf("loading session: %w", err)
		}
		r := &request{sess: sess}
		r.state, r.loaded = m.decode(sess)
		if err := m.check(r); err != nil {
			return err
		}
		c.Locals(localsKey, r)
		err = c.Next()
		if serr := m.save(c.UserContext(), r); serr != nil {
			if err != nil {
				m.log.Error("saving session", "err", serr)
				return err
			}
			return fmt.Errorf("saving session: %w", serr)
		}
		return err
	}
}

// decode returns the session's state and its encoding as loaded. A new session's state
// counts as loaded too, so a visit that changes nothing stores nothing.
func (m *Manager) decode(sess *fibersession.Session) (*State, []byte) {
	raw, _ := sess.Get(stateKey).([]byte)
	var s State
	if raw != nil {
		if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&s); err == nil {
			return &s, raw
		}
		// A record written by an incompatible version: start over rather than fail forever.
		m.log.Warn("discarding unreadable session state")
	}
	s = State{Created: m.now()}
	enc, _ := encode(&s)
	return &s, enc
}

func encode(s *State) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(s)
	return buf.Bytes(), err
}

func (m *Manager) check(r *request) error {
	now := m.now()
	if now.Sub(r.state.Created) > m.max {
		loggedIn := r.state.LoggedIn()
		r.state, r.rotate = &State{Created: now}, true
		if loggedIn {
			r.state.AddFlash(FlashStatus, "Your session has expired. Please log in again.")
		}
		return nil
	}
	if u := r.state.User; u != nil {
		ended, err := m.ended(u)
		if err != nil {
			return err
		}
		if ended {
			r.state.LogOut()
			r.state.AddFlash(FlashStatus, "You have been logged out.")
		}
	}
	return nil
}

// ended reports whether Keycloak ended the user's login after this session logged in.
func (m *Manager) ended(u *User) (bool, error) {
	if u.SessionID != "" {
		v, err := m.backend.Get(endedSIDPrefix + u.SessionID)
		if err != nil || v != nil {
			return v != nil, err
		}
	}
	v, err := m.backend.Get(endedSubPrefix + u.Subject)
	if err != nil || v == nil {
		return false, err
	}
	at, err := time.Parse(time.RFC3339Nano, string(v))
	return err == nil && !u.LoginAt.After(at), nil
}

func (m *Manager) save(ctx context.Context, r *request) error {
	id := r.sess.ID()
	if r.destroy {
		m.unindex(ctx, r.state.User, id)
		return r.sess.Destroy()
	}
	enc, err := encode(r.state)
	if err != nil {
		return err
	}
	if !r.rotate && bytes.Equal(enc, r.loaded) {
		return nil
	}
	if r.rotate {
		// A new id, and nothing but our state carried over: the old record and the CSRF
		// token bound to it are gone, so an id or token planted before login is worthless.
		if err := r.sess.Reset(); err != nil {
			return err
		}
		m.unindex(ctx, r.state.User, id)
		id = r.sess.ID()
	}
	r.sess.Set(stateKey, enc)
	if err := r.sess.Save(); err != nil {
		return err
	}
	if r.rotate && r.state.User != nil {
		return m.index(ctx, r.state.User, id)
	}
	return nil
}

func (m *Manager) index(ctx context.Context, u *User, id string) error {
	if u.SessionID != "" {
		if err := m.backend.AddToSet(ctx, bySIDPrefix+u.SessionID, id, m.max); err != nil {
			return err
		}
	}
	return m.backend.AddToSet(ctx, bySubPrefix+u.Subject, id, m.max)
}

// unindex is best effort: a stale index entry names a record that no longer exists, which
// ending sessions skips anyway.
func (m *Manager) unindex(ctx context.Context, u *User, id string) {
	if u == nil {
		return
	}
	if u.SessionID != "" {
		_ = m.backend.RemoveFromSet(ctx, bySIDPrefix+u.SessionID, id)
	}
	_ = m.backend.RemoveFromSet(ctx, bySubPrefix+u.Subject, id)
}

// EndSessions ends every webapp session of Keycloak session sid or, when sid is empty, of
// subject sub, and returns how many the index named (some may have ended already).
func (m *Manager) EndSessions(ctx context.Context, sid, sub string) (int, error) {
	if sid == "" && sub == "" {
		return 0, errors.New("session: neither sid nor sub to end")
	}
	index, tombstone := bySIDPrefix+sid, endedSIDPrefix+sid
	if sid == "" {
		index, tombstone = bySubPrefix+sub, endedSubPrefix+sub
	}
	// The tombstone goes first: a request of one of these sessions that is in flight right
	// now may save its record again after it is deleted below; its next load then finds the
	// tombstone and logs out.
	if err := m.backend.Set(tombstone, []byte(m.now().Format(time.RFC3339Nano)), m.max); err != nil {
		return 0, err
	}
	ids, err := m.backend.Members(ctx, index)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := m.backend.Delete(recordPrefix + id); err != nil {
			return 0, err
		}
	}
	return len(ids), m.backend.Delete(index)
}

// FirstUse records name for ttl and reports whether it was new, e.g. to refuse a replayed
// logout token by its `jti`.
func (m *Manager) FirstUse(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	return m.backend.SetIfAbsent(ctx, oncePrefix+name, []byte{1}, ttl)
}

func from(c *fiber.Ctx) *request {
	r, ok := c.Locals(localsKey).(*request)
	if !ok {
		panic("session: the session middleware did not run for " + c.Path())
	}
	return r
}

// From returns the session state of the request, for the handler to read and change; the
// middleware saves the changes.
func From(c *fiber.Ctx) *State { return from(c).state }

// Loaded reports whether the session middleware ran for the request.
func Loaded(c *fiber.Ctx) bool {
	_, ok := c.Locals(localsKey).(*request)
	return ok
}

// Rotate gives the session a new id when it is saved, keeping its state. Call it whenever
// the privilege of the session changes (login, step-up), so an id known before is useless.
func Rotate(c *fiber.Ctx) {
	r := from(c)
	r.rotate = true
	r.state.Created = time.Now()
}

// Destroy deletes the session and expires its cookie when the request ends.
func Destroy(c *fiber.Ctx) { from(c).destroy = true }

// prefixed stores Fiber's session records under their own key prefix.
type prefixed struct {
	storage fiber.Storage
	prefix  string
}

func (p prefixed) Get(key string) ([]byte, error) { return p.storage.Get(p.prefix + key) }
func (p prefixed) Set(key string, val []byte, exp time.Duration) error {
	return p.storage.Set(p.prefix+key, val, exp)
}
func (p prefixed) Delete(key string) error { return p.storage.Delete(p.prefix + key) }

// Reset is refused: it would drop every other kind of key with the sessions.
func (p prefixed) Reset() error { return errors.New("session: reset of all sessions is not supported") }

// Close leaves the backend open; its owner closes it.
func (p prefixed) Close() error { return nil }
