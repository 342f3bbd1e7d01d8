package transfer

import (
	"fmt"
	"sync"
	"time"
)

// Freshness and rate limits from PROTOCOL.md.
const (
	MaxAge    = 30 * time.Second // a message older than this is stale
	MaxAhead  = 5 * time.Second  // a message this far in the future is stale
	RateLimit = 50               // transfer messages per second per session
	RateBurst = 100
)

// guard refuses stale, replayed and too frequent messages. Its clock is
// the service's; a clock that jumps back never makes a refused message
// acceptable through the replay cache (nonces are kept until they are
// stale by both the old and the new clock), and buckets never refill on
// negative time.
type guard struct {
	mu      sync.Mutex
	nonces  map[string]time.Time // session + nonce → kept until
	buckets map[string]*bucket   // session → rate bucket
	pruned  time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newGuard() *guard {
	return &guard{nonces: map[string]time.Time{}, buckets: map[string]*bucket{}}
}

// allow takes one token from session's bucket.
func (g *guard) allow(session string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[session]
	if b == nil {
		b = &bucket{tokens: RateBurst, last: now}
		g.buckets[session] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(RateBurst, b.tokens+d.Seconds()*RateLimit)
		b.last = now
	} else if d < 0 {
		b.last = now // the clock went back: no refill for the lost time
	}
	if b.tokens < 1 {
		return fmt.Errorf("%w: at most %d transfer messages a second", ErrTooFast, RateLimit)
	}
	b.tokens--
	return nil
}

// fresh checks ts against now and remembers nonce for the window.
func (g *guard) fresh(session string, ts int64, nonce string, now time.Time) error {
	t := time.UnixMilli(ts)
	if age := now.Sub(t); age > MaxAge {
		return fmt.Errorf("%w: the message is %s old (at most %s); check this device's clock", ErrStale, age.Round(time.Second), MaxAge)
	} else if -age > MaxAhead {
		return fmt.Errorf("%w: the message is %s ahead of the appliance's clock (at most %s); check this device's clock", ErrStale, (-age).Round(time.Second), MaxAhead)
	}
	key := session + "\x00" + nonce
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.pruned) > time.Second || now.Before(g.pruned) {
		g.prune(now)
	}
	if _, seen := g.nonces[key]; seen {
		return fmt.Errorf("%w: nonce %q was already used", ErrReplayed, nonce)
	}
	// Keep it until it is stale by the message's own time and by now.
	g.nonces[key] = later(t, now).Add(MaxAge + MaxAhead)
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// prune drops nonces past their time and full, idle buckets.
func (g *guard) prune(now time.Time) {
	g.pruned = now
	for k, until := range g.nonces {
		if now.After(until) {
			delete(g.nonces, k)
		}
	}
	for k, b := range g.buckets {
		if now.Sub(b.last) > time.Minute {
			delete(g.buckets, k)
		}
	}
}

// size reports how many nonces and buckets are held (tests).
func (g *guard) size() (nonces, buckets int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nonces), len(g.buckets)
}
