package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript is the token bucket as one Lua script, so that reading, refilling and
// taking happen atomically in Redis however many gateway replicas ask at once. Time comes
// from Redis (TIME), not from the replicas, whose clocks may disagree. A bucket key
// expires once it would be full again: an idle caller costs no memory.
//
// KEYS[1] bucket; ARGV[1] rate per second; ARGV[2] burst.
// Returns {allowed (0/1), tokens left as a string (Lua numbers become integers otherwise)}.
var takeScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
`)

// Redis keeps buckets in Redis so that every replica shares each caller's budget. When
// Redis cannot answer in time it falls back to its own in-memory buckets (each replica
// then limits alone) rather than refusing or admitting everyone, and stops asking Redis
// for a second, so an outage does not add a timeout to every request.
type Redis struct {
	client    redis.UniversalClient
	prefix    string
	timeout   time.Duration
	fallback  *Memory
	log       *slog.Logger
	downUntil atomic.Int64
	lastWarn  atomic.Int64
}

// retryAfterFailure is how long the limiter uses its local buckets after Redis failed.
const retryAfterFailure = time.Second

// NewRedis returns a Redis limiter. Keys are "<prefix><policy>:<caller>"; each call waits
// at most timeout for Redis.
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration, log *slog.Logger) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: timeout, fallback: NewMemory(0, nil), log: log}
}

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, p Policy, key string) (Result, error) {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return r.fallback.Take(ctx, p, key)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	vals, err := takeScript.Run(ctx, r.client, []string{r.prefix + p.Name + ":" + key},
		strconv.FormatFloat(p.Rate, 'f', -1, 64), p.Burst).Slice()
	if err == nil {
		var res Result
		if res, err = parse(p, vals); err == nil {
			return res, nil
		}
	}
	r.downUntil.Store(time.Now().Add(retryAfterFailure).UnixNano())
	r.warn(err)
	return r.fallback.Take(ctx, p, key)
}

func parse(p Policy, vals []any) (Result, error) {
	if len(vals) != 2 {
		return Result{}, fmt.Errorf("rate limit script returned %d values", len(vals))
	}
	allowed, ok1 := vals[0].(int64)
	s, ok2 := vals[1].(string)
	tokens, err := strconv.ParseFloat(s, 64)
	if !ok1 || !ok2 || err != nil {
		return Result{}, fmt.Errorf("rate limit script returned %v", vals)
	}
	return result(p, allowed == 1, tokens), nil
}

// warn logs a Redis failure at most every ten seconds: during an outage every request
// fails the same way.
func (r *Redis) warn(err error) {
	now := time.Now().UnixNano()
	last := r.lastWarn.Load()
	if now-last < int64(10*time.Second) || !r.lastWarn.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("rate limiter: Redis failed, using this replica's own buckets", "err", err.Error())
}
