package auth

import (
	"net/netip"
	"sync"
	"time"
)

// throttle pauses sign-in for a key (an account or a client address) after
// too many failures: once free failures are used up, each further failure
// doubles the pause, up to a ceiling. Entries are forgotten after an hour
// without failures, and the table is bounded so a flood of addresses cannot
// grow it without end.
type throttle struct {
	mu      sync.Mutex
	free    int
	first   time.Duration
	ceiling time.Duration
	max     int
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time
}

const throttleForget = time.Hour

func newThrottle(free int, first, ceiling time.Duration) *throttle {
	return &throttle{free: free, first: first, ceiling: ceiling, max: 10000, entries: map[string]*throttleEntry{}}
}

// wait returns how long key must wait before another attempt (0: go ahead).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || now.Sub(e.last) > throttleForget {
		return 0
	}
	if d := e.until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail records a failure for key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || now.Sub(e.last) > throttleForget {
		if len(t.entries) >= t.max {
			t.evict(now)
		}
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	e.last = now
	if over := e.failures - t.free; over > 0 {
		d := t.first
		for i := 1; i < over && d < t.ceiling; i++ {
			d *= 2
		}
		e.until = now.Add(min(d, t.ceiling))
	}
}

// reset forgets key's failures after a success.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// evict drops forgotten entries, or the oldest ones when none are.
func (t *throttle) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range t.entries {
		if now.Sub(e.last) > throttleForget {
			delete(t.entries, k)
		} else if oldestKey == "" || e.last.Before(oldest) {
			oldestKey, oldest = k, e.last
		}
	}
	if len(t.entries) >= t.max {
		delete(t.entries, oldestKey)
	}
}

// addrKey groups a client address: IPv6 clients by their /64, as one host
// usually holds the whole prefix.
func addrKey(addr string) string {
	ap, err := netip.ParseAddr(addr)
	if err != nil {
		return "ip:" + addr
	}
	ap = ap.Unmap()
	if ap.Is6() {
		p, _ := ap.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ap.String()
}
