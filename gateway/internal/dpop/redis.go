package dpop

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the replay cache the gateway replicas share: SET NX with the proof's lifetime,
// one atomic command, so a proof replayed to another replica within its window finds its
// id there. When Redis fails the check fails (and the request gets a 503 to retry): a
// per-replica fallback would let a proof be replayed once per replica.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a replay cache on client, its keys under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// FirstUse implements platform/dpop's ReplayCache.
func (r *Redis) FirstUse(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	err := r.client.SetArgs(ctx, r.prefix+id, 1, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}
