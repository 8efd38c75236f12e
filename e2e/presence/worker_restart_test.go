package presencee2e_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// C12: the worker stops in the middle of a window, presences change while
// it is down, and a new worker takes over. Every extension ends in the
// state its user is in, and the OneCloud simulator applied exactly one
// push per distinct line change: none was pushed twice, and a change
// undone while the worker was down was not pushed at all.
func TestWorkerRestartMidWindowPushesNoStateTwice(t *testing.T) {
	t.Parallel()
	logger, logs := observedLogger(t)
	s, _ := startDemo(t, window, logger)
	const tenant, pbxOrg = graphsim.DemoTenantID, onecloudsim.DemoOrg
	users := graphsim.DemoUsers()
	id := workflows.PresenceSyncID(tenant)

	// applied counts the line changes each extension must have received:
	// one from the first sync, then one per distinct state.
	applied := map[string]int{}
	for _, ext := range demoExt {
		applied[ext] = 1
	}
	propagate(t, s, tenant, users[0].ID, pbxOrg, demoExt[0], "call-start", presence.Busy)
	applied[demoExt[0]]++

	// Stop once the window has heartbeated and is some seconds from its end.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	devstacktest.Eventually(t, window+30*time.Second, "a window in its middle", func() error {
		return midWindow(ctx, s, id, window)
	})
	stopped := time.Now()
	s.StopWorker()
	t.Logf("worker stopped in %s", time.Since(stopped).Round(time.Millisecond))

	// Nothing polls while the worker is down.
	before, _ := s.Graph.RequestCounts(tenant)
	time.Sleep(2 * interval)
	after, _ := s.Graph.RequestCounts(tenant)
	if after.Presences != before.Presences {
		t.Fatalf("%d presence reads while the worker was down",
			after.Presences-before.Presences)
	}

	type change struct {
		user   int
		action string
	}
	for _, c := range []change{
		{0, "call-end"},      // 1001 busy → available
		{1, "meeting-start"}, // 1002 → busy
		{2, "away"},          // 1003 → away
		{3, "call-start"},    // 1004 busy and back: no line change to push
		{3, "call-end"},
		{4, "dnd-start"}, // 1005 → dnd
	} {
		if _, err := s.Graph.ApplyAction(tenant, users[c.user].ID, c.action); err != nil {
			t.Fatal(err)
		}
	}
	applied[demoExt[0]]++
	applied[demoExt[1]]++
	applied[demoExt[2]]++
	applied[demoExt[4]]++
	want := map[string]presence.LineState{
		demoExt[0]: presence.Available, demoExt[1]: presence.Busy, demoExt[2]: presence.Away,
		demoExt[3]: presence.Available, demoExt[4]: presence.DoNotDisturb,
	}

	// The stopped window waits for a worker to retry it.
	d, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	retried := false
	for _, a := range d.GetPendingActivities() {
		retried = retried || (a.GetActivityType().GetName() == workflows.ActivitySyncPresence &&
			a.GetAttempt() > 1)
		t.Logf("while the worker is down: %s attempt %d %s, heartbeat kept: %t, last failure %q",
			a.GetActivityType().GetName(), a.GetAttempt(), a.GetState(),
			a.GetHeartbeatDetails() != nil, a.GetLastFailure().GetMessage())
	}

	restarted := time.Now()
	if err := s.StartWorker(devstack.Options{SyncInterval: interval,
		SyncWindow: window}); err != nil {
		t.Fatal(err)
	}
	devstacktest.Eventually(t, 2*time.Minute, "every line right after the restart", func() error {
		for ext, st := range want {
			if got, _ := s.OneCloud.LineState(pbxOrg, ext); got != st {
				return fmt.Errorf("extension %s is %q, want %q", ext, got, st)
			}
		}
		return nil
	})
	t.Logf("lines right %s after the new worker started", time.Since(restarted).Round(
		time.Millisecond))
	// The stop either ended the window early with its summary recorded, and
	// the next window started from the store, or failed it, and the new
	// worker's retry must start from the window's last heartbeat.
	resumed := logs.FilterMessage("presence sync window resumed from heartbeat").Len() > 0
	switch {
	case retried && !resumed:
		t.Errorf("the new worker retried the stopped window but not from its heartbeat")
	case retried:
		t.Logf("the stopped window was retried on the new worker from its last heartbeat")
	default:
		t.Logf("the stopped window ended early with its summary; the next one read the store")
	}

	// Let the new worker poll a few more times: nothing more may arrive.
	polled, _ := s.Graph.RequestCounts(tenant)
	devstacktest.Eventually(t, 30*time.Second, "three more polls", func() error {
		c, _ := s.Graph.RequestCounts(tenant)
		if c.Presences < polled.Presences+3 {
			return fmt.Errorf("%d polls since", c.Presences-polled.Presences)
		}
		return nil
	})
	for _, ext := range demoExt {
		pushes, replays := s.OneCloud.Pushes(pbxOrg, ext), s.OneCloud.Replays(pbxOrg, ext)
		stale := s.OneCloud.StaleRejections(pbxOrg, ext)
		if pushes != applied[ext] {
			t.Errorf("extension %s: %d applied pushes (%d replays, %d stale), want %d",
				ext, pushes, replays, stale, applied[ext])
		}
		if replays+stale > 0 {
			t.Logf("extension %s: %d replays and %d stale updates refused by OneCloud", ext,
				replays, stale)
		}
	}
	logTakeover(t, s, id)
}

// midWindow succeeds while a SyncPresence window is running, has
// heartbeated, and has at least a quarter of its length to go.
func midWindow(ctx context.Context, s *devstack.Stack, id string, window time.Duration) error {
	d, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return err
	}
	for _, a := range d.GetPendingActivities() {
		if a.GetActivityType().GetName() != workflows.ActivitySyncPresence ||
			a.GetState() != enums.PENDING_ACTIVITY_STATE_STARTED ||
			a.GetHeartbeatDetails() == nil {
			continue
		}
		started := a.GetLastStartedTime().AsTime()
		if el := time.Since(started); el > window/4 && el < window*3/4 {
			return nil
		}
		return fmt.Errorf("window %s old", time.Since(started).Round(time.Second))
	}
	return errors.New("no heartbeating window")
}

// logTakeover says how the window that the stopped worker ran ended in the
// recorded history: completed early by the worker's stop, or timed out and
// retried from its heartbeat.
func logTakeover(t *testing.T, s *devstack.Stack, id string) {
	t.Helper()
	rs := runs(t, s, id)
	r := rs[len(rs)-1]
	retried := 0
	for _, e := range r.Events {
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			retried++
		}
	}
	t.Logf("sync history: %d windows completed, %d timed out, %d retried attempts",
		r.count(enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, ""),
		r.count(enums.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, ""), retried)
}
