package session

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Requests of one session run one at a time. Each request loads the whole session record
// and saves it whole, so two at once would overwrite each other's changes: two tabs adding
// to the cart would lose an item, and a page saving the refresh token it started with
// after another request rotated it would leave the session holding a spent token, which
// Keycloak answers by ending the login. PHP's sessions serialise requests the same way.
//
// The lock is a key in the Backend (SetIfAbsent), so replicas sharing Redis share it: a
// random token per holder, released by compare-and-delete (DeleteIfEqual), expiring after
// lockTTL should its holder die.
const (
	lockPrefix = keyPrefix + "lock:"
	// lockTTL outlives any request: the webapp's write timeout is 30 s.
	lockTTL = 35 * time.Second
	// lockWait is how long a request waits for the one before it.
	lockWait = 15 * time.Second
	// maxIDLength bounds what a cookie can make a lock key of; ids are 26 characters.
	maxIDLength = 64
)

// busy is the answer (503) when another request of the same session held it for lockWait.
const busy = "another request of this session is still running; try again in a moment"

// Serialize runs the requests that name the same session one at a time (see above). It
// must run before anything that loads or saves the session, the CSRF middleware included.
// Requests without a session cookie start a new session and pass at once.
func (m *Manager) Serialize() fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Cookies(m.cookie)
		if id == "" || len(id) > maxIDLength {
			return c.Next()
		}
		unlock, err := m.lock(c.UserContext(), id)
		if err != nil {
			return err
		}
		defer unlock()
		return c.Next()
	}
}

func (m *Manager) lock(ctx context.Context, id string) (func(), error) {
	key, token := lockPrefix+id, []byte(rand.Text())
	deadline := time.Now().Add(lockWait)
	for delay := 2 * time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		ok, err := m.backend.SetIfAbsent(ctx, key, token, lockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				// The request's own context may be done by now; the release must still happen.
				if err := m.backend.DeleteIfEqual(context.WithoutCancel(ctx), key, token); err != nil {
					m.log.Warn("releasing a session lock", "err", err)
				}
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fiber.NewError(fiber.StatusServiceUnavailable, busy)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}
