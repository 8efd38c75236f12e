package presencee2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// C2: tenant A answers 429 with Retry-After: 7. A sends nothing for those
// seconds, then carries on: its busy lamp arrives after the throttle.
// Meanwhile tenant B's changes keep arriving within interval + 1 s.
func TestThrottledTenantWaitsAndOthersKeepTheirPace(t *testing.T) {
	t.Parallel()
	s := devstacktest.Start(t, devstack.Options{SyncInterval: interval, SyncWindow: window})
	a := connectSeeded(t, s, 201, 5)
	b := connectSeeded(t, s, 202, 5)
	for _, sd := range []seeded{a, b} {
		for _, u := range sd.Users[:3] {
			if _, err := s.Graph.ApplyAction(sd.TenantID, u, "available"); err != nil {
				t.Fatal(err)
			}
			waitLine(t, s, sd.PBXOrg, sd.Ext[u], presence.Available, 30*time.Second)
		}
	}

	const retryAfter = 7 * time.Second
	throttled := time.Now()
	if err := s.Graph.InjectThrottle(a.TenantID, 1, retryAfter); err != nil {
		t.Fatal(err)
	}
	changedA, err := s.Graph.ApplyAction(a.TenantID, a.Users[0], "call-start")
	if err != nil {
		t.Fatal(err)
	}

	// A sends no presence read from shortly after its 429 until the
	// Retry-After has passed; sampled in the background while B works.
	quiet := make(chan error, 1)
	go func() {
		time.Sleep(time.Until(throttled.Add(interval + 1500*time.Millisecond)))
		c0, _ := s.Graph.RequestCounts(a.TenantID)
		time.Sleep(time.Until(throttled.Add(retryAfter - 500*time.Millisecond)))
		c1, _ := s.Graph.RequestCounts(a.TenantID)
		switch {
		case c1.Throttled != 1:
			quiet <- fmt.Errorf("tenant A got %d 429 answers, want 1", c1.Throttled)
		case c1.Presences != c0.Presences:
			quiet <- fmt.Errorf("tenant A sent %d presence reads during its Retry-After",
				c1.Presences-c0.Presences)
		default:
			quiet <- nil
		}
	}()

	var bDelays []time.Duration
	actions := []string{"call-start", "call-end"}
	for i := 0; time.Since(throttled) < retryAfter-2*time.Second; i++ {
		u := b.Users[(i/2)%3]
		want := presence.Busy
		if i%2 == 1 {
			want = presence.Available
		}
		d := propagate(t, s, b.TenantID, u, b.PBXOrg, b.Ext[u], actions[i%2], want)
		bDelays = append(bDelays, d)
		if d > maxDelay {
			t.Errorf("tenant B change %d took %s during A's throttle, want at most %s", i, d,
				maxDelay)
		}
	}
	t.Logf("tenant B during A's throttle: %v", bDelays)
	if len(bDelays) < 3 {
		t.Errorf("only %d changes of B during A's throttle", len(bDelays))
	}

	r := receipt(t, s, a.PBXOrg, a.Ext[a.Users[0]], presence.Busy, changedA, 30*time.Second)
	wait := r.ReceivedAt.Sub(throttled)
	t.Logf("tenant A's busy lamp arrived %s after the 429 was armed (Retry-After %s)",
		wait.Round(time.Millisecond), retryAfter)
	if wait < retryAfter {
		t.Errorf("tenant A's change arrived %s after the throttle, before its Retry-After %s",
			wait, retryAfter)
	}
	if limit := retryAfter + interval + maxDelay; wait > limit {
		t.Errorf("tenant A's change arrived %s after the throttle, want within %s", wait, limit)
	}
	if err := <-quiet; err != nil {
		t.Error(err)
	}
}

// C1: a tenant of 1,400 linked users is read in three presence requests per
// poll, never in an oversized batch: the Graph simulator counts the
// requests between two pauses of the sync, the sync's totals count the
// polls, and a change of a user in each batch reaches the lamp.
func TestLargeTenantIsReadInBatchesOf650(t *testing.T) {
	t.Parallel()
	const users = 1400
	s := devstacktest.Start(t, devstack.Options{SyncInterval: interval, SyncWindow: window})
	big := connectSeeded(t, s, 301, users)
	devstacktest.Eventually(t, 2*time.Minute, "every line set once", func() error {
		for _, u := range big.Users {
			if st, _ := s.OneCloud.LineState(big.PBXOrg, big.Ext[u]); st == "" {
				return fmt.Errorf("extension %s not set yet", big.Ext[u])
			}
		}
		return nil
	})

	// fence pauses the sync, waits until it is quiet, and returns the
	// simulator's counts and the sync's totals.
	fence := func() (graphsimCounts, workflows.SyncTotals) {
		signal(t, s, big.TenantID, workflows.SignalPause)
		devstacktest.Eventually(t, time.Minute, "sync paused and quiet", func() error {
			if st := status(t, s, big.TenantID); st.State != workflows.SyncPaused {
				return fmt.Errorf("sync %s", st.State)
			}
			c0, _ := s.Graph.RequestCounts(big.TenantID)
			time.Sleep(2 * interval)
			c1, _ := s.Graph.RequestCounts(big.TenantID)
			if c1.Presences != c0.Presences {
				return fmt.Errorf("%d reads while paused", c1.Presences-c0.Presences)
			}
			return nil
		})
		c, _ := s.Graph.RequestCounts(big.TenantID)
		return graphsimCounts{Presences: c.Presences, Failed: c.Failed},
			status(t, s, big.TenantID).Totals
	}

	c0, t0 := fence()
	signal(t, s, big.TenantID, workflows.SignalResume)
	for _, i := range []int{0, graph.MaxPresenceIDs, users - 1} {
		u := big.Users[i]
		propagate(t, s, big.TenantID, u, big.PBXOrg, big.Ext[u], "dnd-start",
			presence.DoNotDisturb)
	}
	devstacktest.Eventually(t, time.Minute, "five polls since the resume", func() error {
		c, _ := s.Graph.RequestCounts(big.TenantID)
		if c.Presences < c0.Presences+5*3 {
			return fmt.Errorf("%d presence requests", c.Presences-c0.Presences)
		}
		return nil
	})
	c1, t1 := fence()

	polls, reads := t1.Polls-t0.Polls, int64(c1.Presences-c0.Presences)
	perPoll := int64((users + graph.MaxPresenceIDs - 1) / graph.MaxPresenceIDs)
	t.Logf("%d polls of %d users: %d presence requests at Graph, %d counted by the sync",
		polls, users, reads, t1.Requests-t0.Requests)
	if polls < 3 {
		t.Fatalf("only %d polls between the pauses", polls)
	}
	// The pause may cut the last poll short after some of its batches:
	// those requests reach Graph but the poll is not counted.
	if reads < perPoll*polls || reads > perPoll*polls+perPoll-1 {
		t.Errorf("%d presence requests for %d polls, want %d per poll", reads, polls, perPoll)
	}
	if got := t1.Requests - t0.Requests; got != perPoll*polls {
		t.Errorf("the sync counted %d requests for %d polls, want %d per poll", got, polls,
			perPoll)
	}
	if c1.Failed != 0 {
		t.Errorf("%d presence requests failed", c1.Failed)
	}
}

// graphsimCounts are the request counts the batching test compares.
type graphsimCounts struct {
	Presences int
	Failed    int
}
