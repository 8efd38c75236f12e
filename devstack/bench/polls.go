package bench

import (
	"context"
	"sync"
	"time"
)

// pollSample is how often watchPolls reads the Graph simulator's request
// counts.
const pollSample = 20 * time.Millisecond

// Polls are the times between the starts of consecutive presence polls of
// one tenant, seen from the Graph simulator: a sync that keeps its pace
// shows the interval; a longer gap is a poll that ran late, and a change
// made just before it waits that much longer.
type Polls struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

// TenantPolls are the poll gaps of the big tenant and of one ordinary
// tenant, for comparison.
type TenantPolls struct {
	Big   Polls `json:"big"`
	Small Polls `json:"small"`
}

// watchPolls watches the presence requests of the big tenant and of the
// first ordinary one until the returned function is called, which
// returns their poll gaps.
func (r *runner) watchPolls(ctx context.Context) func() TenantPolls {
	var big, small *benchTenant
	for _, t := range r.tenants {
		switch {
		case t.big && big == nil:
			big = t
		case !t.big && small == nil:
			small = t
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var out TenantPolls
	watch := func(t *benchTenant, into *Polls) {
		if t == nil {
			return
		}
		wg.Go(func() { *into = r.pollGaps(ctx, t.id) })
	}
	watch(big, &out.Big)
	watch(small, &out.Small)
	return func() TenantPolls {
		cancel()
		wg.Wait()
		return out
	}
}

// pollGaps samples a tenant's presence request count until ctx ends. A
// poll starts when the count grows after a quiet spell of a quarter of the
// interval: the requests of one poll follow each other closely.
func (r *runner) pollGaps(ctx context.Context, tenantID string) Polls {
	tick := time.NewTicker(pollSample)
	defer tick.Stop()
	quiet := r.cfg.Interval / 4

	var gaps []time.Duration
	var last int
	var lastGrowth, lastStart time.Time
	for {
		select {
		case <-ctx.Done():
			return pollSummary(gaps)
		case <-tick.C:
		}
		rc, err := r.s.Graph.RequestCounts(tenantID)
		if err != nil {
			return pollSummary(gaps)
		}
		now := time.Now()
		if rc.Presences == last {
			continue
		}
		if last != 0 && now.Sub(lastGrowth) >= quiet {
			if !lastStart.IsZero() {
				gaps = append(gaps, now.Sub(lastStart))
			}
			lastStart = now
		}
		last, lastGrowth = rc.Presences, now
	}
}

// pollSummary sorts gaps and takes its percentiles.
func pollSummary(gaps []time.Duration) Polls {
	var d Delays
	summarise(&d, gaps)
	return Polls{Count: len(gaps), P50: d.P50, P99: d.P99, Max: d.Max}
}
