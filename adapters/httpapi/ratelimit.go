package httpapi

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// RateLimit is a token bucket per principal: Rate requests per second on
// average, bursts of up to Burst. A zero Rate disables limiting.
type RateLimit struct {
	Rate  float64
	Burst int
}

// limiter holds one bucket per key in shards, so that principals do not
// contend on one lock.
type limiter struct {
	cfg    RateLimit
	seed   maphash.Seed
	shards [64]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	_       [40]byte // keep shards on separate cache lines
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(cfg RateLimit) *limiter {
	l := &limiter{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*bucket)
	}
	return l
}

// allow takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is available.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.cfg.Rate <= 0 {
		return true, 0
	}
	burst := float64(max(l.cfg.Burst, 1))
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[key]
	if !ok {
		if len(sh.buckets) > 10_000 { // bound memory; idle buckets are full anyway
			clear(sh.buckets)
		}
		b = &bucket{tokens: burst, last: now}
		sh.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*l.cfg.Rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.cfg.Rate * float64(time.Second))
	return false, wait
}
