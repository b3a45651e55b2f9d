// Package tokencache remembers verified access tokens so that the gateway checks each
// token's signature once, not on every request. It is the fast path of authentication:
// an RSA verification plus claim parsing costs tens of microseconds, a cache hit a hash
// and a map lookup.
//
// Safety rests on three rules. Entries are keyed by the SHA-256 of the Authorization
// header value (scheme and token, exactly as sent), so only the very credential that was
// verified can hit: a collision-resistant hash, because a collision would be an
// authentication bypass, and no raw token is kept as a key. Hashing the header as it is,
// rather than a token parsed out of it, leaves parsing to platform/authn alone: the cache
// cannot disagree with the verifier about what the token is. An entry lives until the
// token's own `exp`, never longer, without the verifier's clock leeway. And every entry is
// dropped when the verifier's signing keys change (KeysGeneration), so a rotated-out key
// stops vouching for cached tokens as soon as the verifier knows.
//
// Cached principals are shared between requests and must be treated as read-only, as
// every policy does.
//
// What the cache cannot do is notice a revoked token before it expires; neither can the
// stateless verification it stands in for. Access tokens live five minutes for that
// reason.
package tokencache

import (
	"crypto/sha256"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	lru "github.com/hashicorp/golang-lru/v2"

	"example.com/shop/platform/authn"
)

// DefaultSize is the number of tokens a Cache holds when not told otherwise: a few MiB,
// and more concurrent users than the shop will see on one replica within five minutes.
const DefaultSize = 10_000

// Keys is what the cache needs to know of the verifier.
type Keys interface {
	KeysGeneration() uint64
}

type entry struct {
	principal  *authn.Principal
	expiry     time.Time
	generation uint64
}

// Cache maps verified tokens to their principals. It is safe for concurrent use.
type Cache struct {
	keys       Keys
	entries    *lru.Cache[key, entry]
	generation atomic.Uint64
	now        func() time.Time
}

// New returns a cache of at most size entries (DefaultSize when size <= 0), dropped
// whenever keys.KeysGeneration changes. now is the clock; nil means time.Now.
func New(keys Keys, size int, now func() time.Time) *Cache {
	if size <= 0 {
		size = DefaultSize
	}
	if now == nil {
		now = time.Now
	}
	entries, _ := lru.New[key, entry](size) // errors only for size <= 0
	c := &Cache{keys: keys, entries: entries, now: now}
	c.generation.Store(keys.KeysGeneration())
	return c
}

type key = [sha256.Size]byte

// Lookup returns the principal of a credential (an Authorization header value) verified
// before, if its entry is still good.
func (c *Cache) Lookup(credential []byte) (*authn.Principal, bool) {
	return c.lookup(sha256.Sum256(credential))
}

func (c *Cache) lookup(k key) (*authn.Principal, bool) {
	gen := c.currentGeneration()
	e, ok := c.entries.Get(k)
	if !ok || e.generation != gen || !c.now().Before(e.expiry) {
		return nil, false
	}
	return e.principal, true
}

// Store remembers a credential verified while the key generation was gen. Passing the
// generation read before verification (not after) means a token verified across a key
// change is stored under the old generation and never served.
func (c *Cache) Store(credential []byte, gen uint64, p *authn.Principal) {
	c.store(sha256.Sum256(credential), gen, p)
}

func (c *Cache) store(k key, gen uint64, p *authn.Principal) {
	if p == nil || !c.now().Before(p.Expiry) {
		return
	}
	c.entries.Add(k, entry{principal: p, expiry: p.Expiry, generation: gen})
}

// Generation is the key generation to pass to Store for a token about to be verified.
func (c *Cache) Generation() uint64 { return c.currentGeneration() }

// Len is the number of entries held.
func (c *Cache) Len() int { return c.entries.Len() }

// currentGeneration returns the verifier's key generation, emptying the cache the first
// time a change is seen. Entries carry their generation too, so the purge is about
// memory, not correctness.
func (c *Cache) currentGeneration() uint64 {
	gen := c.keys.KeysGeneration()
	if old := c.generation.Load(); old != gen && c.generation.CompareAndSwap(old, gen) {
		c.entries.Purge()
	}
	return gen
}

const pendingKey = "shop.gateway.tokencache.pending"

type pending struct {
	key        key
	generation uint64
}

// Middleware returns the two handlers that put the cache around verify, the platform's
// authentication middleware (authn.Verifier.Middleware); mount them in this order, with
// nothing between. On a hit the first stores the cached principal and skips verify; on a
// miss it runs verify, whose success continues to the second handler, which stores what
// verify found. Refusals are verify's own, so every bad token is answered exactly as
// without the cache, and only verified tokens are ever stored.
//
// Two handlers are needed because verify continues the chain itself on success; a cache
// hook in platform/authn's middleware would make this one handler.
func (c *Cache) Middleware(verify fiber.Handler) (lookup, store fiber.Handler) {
	lookup = func(ctx *fiber.Ctx) error {
		// Not Header.Peek: that takes the first of several Authorization headers, and a hit
		// would skip verify, which refuses such a request.
		credential, err := authn.Authorization(ctx)
		if err != nil {
			return err
		}
		if len(credential) == 0 {
			return verify(ctx)
		}
		k := sha256.Sum256(credential)
		if p, hit := c.lookup(k); hit {
			authn.WithPrincipal(ctx, p)
			return ctx.Next()
		}
		ctx.Locals(pendingKey, &pending{key: k, generation: c.currentGeneration()})
		return verify(ctx)
	}
	store = func(ctx *fiber.Ctx) error {
		if pd, ok := ctx.Locals(pendingKey).(*pending); ok && pd != nil {
			if p, ok := authn.PrincipalFrom(ctx); ok {
				c.store(pd.key, pd.generation, p)
			}
			ctx.Locals(pendingKey, nil)
		}
		return ctx.Next()
	}
	return lookup, store
}
