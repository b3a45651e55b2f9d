package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	redisstore "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"
)

// Redis is the shared Backend for several webapp replicas. Plain values go through Fiber's
// own Redis storage; the logout index uses Redis sets on the same connection.
type Redis struct {
	*redisstore.Storage
	conn redis.UniversalClient
}

// NewRedis connects to the Redis at url (redis://[user:pass@]host:port/db, or rediss:// for
// TLS) and checks that it answers. Unlike redisstore.New it returns an error instead of
// panicking when Redis is down at start-up.
func NewRedis(ctx context.Context, url string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("session: WEBAPP_REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("session: redis at %s: %w", opts.Addr, err)
	}
	return &Redis{Storage: redisstore.NewFromConnection(client), conn: client}, nil
}

// Reset is refused: the storage's Reset flushes the whole Redis database, which may hold
// other services' data (the gateway's rate-limit counters), and no session code needs it.
func (r *Redis) Reset() error {
	return errors.New("session: Reset would flush the shared Redis database; refused")
}

// AddToSet implements Backend with SADD and EXPIRE in one transaction.
func (r *Redis) AddToSet(ctx context.Context, key, member string, ttl time.Duration) error {
	_, err := r.conn.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, member)
		if ttl > 0 {
			p.PExpire(ctx, key, ttl)
		}
		return nil
	})
	return err
}

// Members implements Backend.
func (r *Redis) Members(ctx context.Context, key string) ([]string, error) {
	return r.conn.SMembers(ctx, key).Result()
}

// RemoveFromSet implements Backend.
func (r *Redis) RemoveFromSet(ctx context.Context, key, member string) error {
	return r.conn.SRem(ctx, key, member).Err()
}

// SetIfAbsent implements Backend with SET NX.
func (r *Redis) SetIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	err := r.conn.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// deleteIfEqual is the compare-and-delete of a Redis lock: GET and DEL in one script, so no
// other client's SET can fall between them.
var deleteIfEqual = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// DeleteIfEqual implements Backend.
func (r *Redis) DeleteIfEqual(ctx context.Context, key string, val []byte) error {
	return deleteIfEqual.Run(ctx, r.conn, []string{key}, val).Err()
}

// Ping implements Backend.
func (r *Redis) Ping(ctx context.Context) error { return r.conn.Ping(ctx).Err() }
