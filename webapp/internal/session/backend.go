// Package session keeps the webapp's server-side sessions: the shopper's cart, the login in
// progress and, once logged in, the user and their tokens. The browser only ever holds an
// opaque, random session id in an HttpOnly cookie.
//
// Records live in a Backend: in memory by default (one replica), or in Redis so that several
// webapp replicas share sessions. Fiber's session middleware manages the cookie and the
// record; this package adds what a login needs on top of it: the id rotated at login (no
// session fixation), an absolute lifetime besides the idle one, and an index from
// Keycloak's session id (`sid`) and subject (`sub`) to the webapp sessions, so that a
// back-channel logout from Keycloak ends every session of that login at once.
package session

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Backend is where session records and their indexes are stored. It is Fiber's Storage
// (what the session and CSRF middleware need) plus the few set operations the logout index
// needs; both implementations pass the same contract test.
type Backend interface {
	fiber.Storage

	// AddToSet adds member to the set named key and keeps the set for at least ttl.
	AddToSet(ctx context.Context, key, member string, ttl time.Duration) error
	// Members returns the members of the set named key; none when it does not exist.
	Members(ctx context.Context, key string) ([]string, error)
	// RemoveFromSet removes member from the set named key.
	RemoveFromSet(ctx context.Context, key, member string) error
	// SetIfAbsent stores val under key for ttl unless key already exists, and reports
	// whether it stored it: one atomic step, so two replicas cannot both claim a key.
	SetIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// DeleteIfEqual deletes key only while it still holds val, in one atomic step, so the
	// holder of a lock that expired cannot delete the next holder's.
	DeleteIfEqual(ctx context.Context, key string, val []byte) error
	// Ping reports whether the backend can be used, for the readiness probe.
	Ping(ctx context.Context) error
}
