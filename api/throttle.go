package api

import (
	"sync"
	"time"
)

// Login throttling: after maxFailures failed log-ins within failureWindow,
// an account or a client address must wait until the oldest failure leaves
// the window.
const (
	maxFailures   = 5
	failureWindow = 15 * time.Minute
	maxTracked    = 100_000 // keys kept before the oldest entries are dropped
)

// throttle counts failed log-ins per key ("account:<email>", "addr:<ip>").
//
// It is kept in memory, per process: with several api replicas an attacker
// gets maxFailures attempts per replica, and a restart forgets the counts.
// That still turns a password-guessing run from millions of tries into a
// handful per quarter hour; a shared limit would need the store.
type throttle struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	fails  map[string][]time.Time
}

func newThrottle(max int, window time.Duration) *throttle {
	return &throttle{max: max, window: window, fails: map[string][]time.Time{}}
}

// wait returns how long the longest-blocked key must still wait, 0 when
// none of the keys is blocked.
func (t *throttle) wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()

	var longest time.Duration
	for _, k := range keys {
		f := t.recent(k, now)
		if len(f) >= t.max {
			if w := f[0].Add(t.window).Sub(now); w > longest {
				longest = w
			}
		}
	}
	return longest
}

// fail records a failed attempt for every key.
func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()

	if len(t.fails) >= maxTracked {
		t.prune(now)
	}
	for _, k := range keys {
		t.fails[k] = append(t.recent(k, now), now)
	}
}

// reset forgets a key's failures after a successful log-in.
func (t *throttle) reset(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.fails, k)
	}
}

// recent returns the key's failures still inside the window. The caller
// holds the lock.
func (t *throttle) recent(k string, now time.Time) []time.Time {
	f := t.fails[k]
	i := 0
	for i < len(f) && !f[i].After(now.Add(-t.window)) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.fails, k)
		return nil
	}
	t.fails[k] = f
	return f
}

// prune drops keys with no failure inside the window, and every key if the
// map is still full (an attack from many addresses), so memory stays
// bounded. The caller holds the lock.
func (t *throttle) prune(now time.Time) {
	for k := range t.fails {
		t.recent(k, now)
	}
	if len(t.fails) >= maxTracked {
		t.fails = map[string][]time.Time{}
	}
}
