package graph

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// windowMargin widens the per-tenant window on OneSync's side, so that
// requests that leave close together but arrive at Graph further apart
// still fit Graph's count.
const windowMargin = time.Second

// Budget keeps OneSync's Graph traffic within Graph's limits: at most
// TenantPresenceRequests presence requests per TenantPresenceWindow per
// tenant, a global rate over all tenants, and a pause per tenant after a
// 429's Retry-After. Every tenant has its own window and pause state, so one
// tenant's throttling or size never makes another tenant wait; only the
// global rate is shared. It is safe for concurrent use.
type Budget struct {
	global *rate.Limiter
	limit  int
	window time.Duration

	mu      sync.Mutex
	tenants map[string]*tenantBudget
}

// tenantBudget is one tenant's state: the send times of its last limit
// presence requests (a ring) and the end of its current pause.
type tenantBudget struct {
	mu          sync.Mutex
	sent        []time.Time
	next        int
	pausedUntil time.Time
}

// NewBudget returns a budget allowing globalRate requests per second over
// all tenants and tenantRequests presence requests per tenantWindow per
// tenant. Zero values take DefaultGlobalRate, TenantPresenceRequests and
// TenantPresenceWindow.
func NewBudget(globalRate float64, tenantRequests int, tenantWindow time.Duration) *Budget {
	if globalRate <= 0 {
		globalRate = DefaultGlobalRate
	}
	if tenantRequests <= 0 {
		tenantRequests = TenantPresenceRequests
	}
	if tenantWindow <= 0 {
		tenantWindow = TenantPresenceWindow
	}
	burst := max(1, int(globalRate/10))
	return &Budget{
		global:  rate.NewLimiter(rate.Limit(globalRate), burst),
		limit:   tenantRequests,
		window:  tenantWindow + windowMargin,
		tenants: make(map[string]*tenantBudget),
	}
}

// Wait blocks until tenant may send one Graph request that is not a
// presence read: the tenant's pause is over and the global rate allows it.
func (b *Budget) Wait(ctx context.Context, tenant string) error {
	t := b.tenant(tenant)
	if err := t.waitPause(ctx); err != nil {
		return fmt.Errorf("budget of tenant %s: %w", tenant, err)
	}
	if err := b.global.Wait(ctx); err != nil {
		return fmt.Errorf("global graph budget: %w", err)
	}
	return nil
}

// WaitPresence blocks until tenant may send one presence request: the
// tenant's pause is over, its window has room, and the global rate allows
// it. The request is counted against the tenant's window once it returns
// nil.
func (b *Budget) WaitPresence(ctx context.Context, tenant string) error {
	t := b.tenant(tenant)
	if err := t.waitPause(ctx); err != nil {
		return fmt.Errorf("budget of tenant %s: %w", tenant, err)
	}
	if err := t.takeSlot(ctx, b.limit, b.window); err != nil {
		return fmt.Errorf("presence budget of tenant %s: %w", tenant, err)
	}
	if err := b.global.Wait(ctx); err != nil {
		return fmt.Errorf("global graph budget: %w", err)
	}
	return nil
}

// Pause stops tenant's requests for d, as a 429's Retry-After asks. A
// shorter pause never cuts a longer one short.
func (b *Budget) Pause(tenant string, d time.Duration) {
	if d <= 0 {
		return
	}
	t := b.tenant(tenant)
	until := time.Now().Add(d)

	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
}

// PausedUntil is when tenant's current pause ends; zero or past when it is
// not paused.
func (b *Budget) PausedUntil(tenant string) time.Time {
	t := b.tenant(tenant)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pausedUntil
}

func (b *Budget) tenant(id string) *tenantBudget {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.tenants[id]
	if !ok {
		t = &tenantBudget{}
		b.tenants[id] = t
	}
	return t
}

func (t *tenantBudget) waitPause(ctx context.Context) error {
	for {
		t.mu.Lock()
		d := time.Until(t.pausedUntil)
		t.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// takeSlot records one request in the window once fewer than limit
// requests were sent in the last window.
func (t *tenantBudget) takeSlot(ctx context.Context, limit int, window time.Duration) error {
	for {
		t.mu.Lock()
		now := time.Now()
		if len(t.sent) < limit {
			t.sent = append(t.sent, now)
			t.mu.Unlock()
			return nil
		}
		oldest := t.sent[t.next]
		if wait := oldest.Add(window).Sub(now); wait > 0 {
			t.mu.Unlock()
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		t.sent[t.next] = now
		t.next = (t.next + 1) % limit
		t.mu.Unlock()
		return nil
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
