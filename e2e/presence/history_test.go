package presencee2e_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// maxEventsPerWindow bounds what one SyncPresence window may add to the
// history: the activity's scheduled, started and completed events and one
// workflow task's three, with room for a timer or a marker.
const maxEventsPerWindow = 12

// C11: the history of a tenant's sync grows by a small constant per window
// and each run continues as new after MaxWindowsPerRun windows, far below
// Temporal's 50,000 events and 50 MB. The figures are read from the real
// recorded history of every run. A 2 s window keeps the run to about 100 s;
// the events per window do not depend on the window's length.
//
// It does not run in parallel: its window is shorter than the other
// tests', and the worker sets the pace for the whole process.
func TestHistoryPerWindowIsConstant(t *testing.T) {
	const window = 2 * time.Second
	s, _ := startDemo(t, window, nil)
	const tenant, pbxOrg = graphsim.DemoTenantID, onecloudsim.DemoOrg
	aino := graphsim.DemoUsers()[0]
	id := workflows.PresenceSyncID(tenant)

	// Calls keep going while the windows pass, so that the windows carry
	// pushes and the changes cross window boundaries.
	var delays []time.Duration
	deadline := time.Now().Add(time.Duration(workflows.MaxWindowsPerRun)*window*3 + time.Minute)
	for status(t, s, tenant).Run < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no continue-as-new after %d windows of %s", workflows.MaxWindowsPerRun,
				window)
		}
		delays = append(delays,
			propagate(t, s, tenant, aino.ID, pbxOrg, demoExt[0], "call-start", presence.Busy),
			propagate(t, s, tenant, aino.ID, pbxOrg, demoExt[0], "call-end", presence.Available))
	}
	slices.Sort(delays)
	t.Logf("%d changes across window boundaries: median %s, max %s (limit in one window %s)",
		len(delays), delays[len(delays)/2].Round(time.Millisecond),
		delays[len(delays)-1].Round(time.Millisecond), maxDelay)

	// The sync carries on in the new run.
	propagate(t, s, tenant, aino.ID, pbxOrg, demoExt[0], "meeting-start", presence.Busy)
	if st := status(t, s, tenant); st.State != workflows.SyncRunning {
		t.Errorf("sync is %s in run %d, want running", st.State, st.Run)
	}

	rs := runs(t, s, id)
	if len(rs) < 2 {
		t.Fatalf("%d runs recorded, want 2 or more", len(rs))
	}
	first := rs[0]
	if k := first.closed(); k != enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW {
		t.Fatalf("first run ended by %s, want continued as new", k)
	}
	windows := first.count(enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, workflows.ActivitySyncPresence)
	if windows != workflows.MaxWindowsPerRun {
		t.Errorf("first run had %d windows, want MaxWindowsPerRun = %d", windows,
			workflows.MaxWindowsPerRun)
	}
	events := len(first.Events)
	perWindow := float64(events) / float64(windows)
	t.Logf("first run: %d events, %d bytes, %d windows: %.2f events per window", events,
		first.Bytes, windows, perWindow)
	if perWindow > maxEventsPerWindow {
		t.Errorf("%.2f events per window, want at most %d", perWindow, maxEventsPerWindow)
	}
	if events >= 1000 || first.Bytes >= 1<<20 {
		t.Errorf("first run: %d events, %d bytes; want under 1,000 and 1 MiB", events, first.Bytes)
	}

	// Constant, not merely small on average: every window after the first
	// adds the same few events, the last ones as many as the early ones.
	gaps := windowGaps(first)
	if len(gaps) > 0 {
		lo, hi := slices.Min(gaps), slices.Max(gaps)
		t.Logf("events between consecutive windows: min %d, max %d", lo, hi)
		if hi > maxEventsPerWindow {
			t.Errorf("a window added %d events, want at most %d: %v", hi, maxEventsPerWindow,
				gaps)
		}
	}

	// What that means at the default pace: 12 windows of 5 min per hour.
	perHour := 60 / workflows.DefaultSyncWindow.Minutes() * perWindow
	runHours := float64(workflows.MaxWindowsPerRun) * workflows.DefaultSyncWindow.Hours()
	t.Logf("at the default %s window: %.0f events per hour of sync; a run lasts %.1f h "+
		"and ends with about %d events; 30 days take %.0f runs, none near 50,000 events",
		workflows.DefaultSyncWindow, perHour, runHours, events,
		30*24/runHours)
}

// windowGaps counts the events between one SyncPresence scheduling and the
// next.
func windowGaps(r run) []int {
	var gaps []int
	last := -1
	for i, e := range r.Events {
		if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() !=
			workflows.ActivitySyncPresence {
			continue
		}
		if last >= 0 {
			gaps = append(gaps, i-last)
		}
		last = i
	}
	return gaps
}

// C10: pause, resume and resync-users sent in bursts across the
// continue-as-new boundary are none of them lost. A run continues as new
// after MaxSignalsPerRun signals, which puts the boundary where the test
// wants it: harmless resumes (the sync is running) fill the run up to a
// few signals short of the limit, then the burst straddles it.
func TestSignalsAcrossContinueAsNewAreNotLost(t *testing.T) {
	t.Parallel()
	s, _ := startDemo(t, window, nil)
	const tenant, pbxOrg = graphsim.DemoTenantID, onecloudsim.DemoOrg
	id := workflows.PresenceSyncID(tenant)
	sent := 0

	burst := func(names ...string) {
		rs := runs(t, s, id)
		cur := rs[len(rs)-1]
		received := cur.count(enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, "")
		fill := workflows.MaxSignalsPerRun - received - len(names)/2
		for range fill {
			signal(t, s, tenant, workflows.SignalResume)
		}
		for _, n := range names {
			signal(t, s, tenant, n)
		}
		sent += fill + len(names)
		t.Logf("run %d had %d signals; sent %d resumes and the burst %v", len(rs), received,
			fill, names)
	}

	// Burst 1 ends running, with resync-users asked for twice.
	runsBefore := len(runs(t, s, id))
	burst(workflows.SignalPause, workflows.SignalResume, workflows.SignalResyncUsers,
		workflows.SignalPause, workflows.SignalResume, workflows.SignalResyncUsers,
		workflows.SignalPause, workflows.SignalResume)
	devstacktest.Eventually(t, time.Minute, "running after burst 1 in a new run", func() error {
		st := status(t, s, tenant)
		if st.Run <= runsBefore || st.State != workflows.SyncRunning {
			return fmt.Errorf("run %d %s", st.Run, st.State)
		}
		return nil
	})
	devstacktest.Eventually(t, time.Minute, "RefreshUsers after resync-users", func() error {
		for i, r := range runs(t, s, id) {
			if n := r.count(enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
				workflows.ActivityRefreshUsers); n > 0 {
				t.Logf("run %d scheduled RefreshUsers %d times", i+1, n)
				return nil
			}
		}
		return fmt.Errorf("no RefreshUsers in any run")
	})
	// Running means polling: a call still lights the lamp.
	aino := graphsim.DemoUsers()[0]
	propagate(t, s, tenant, aino.ID, pbxOrg, demoExt[0], "call-start", presence.Busy)

	// Burst 2 ends paused.
	runsBefore = len(runs(t, s, id))
	burst(workflows.SignalResume, workflows.SignalPause, workflows.SignalResyncUsers,
		workflows.SignalResume, workflows.SignalPause, workflows.SignalResume,
		workflows.SignalPause)
	devstacktest.Eventually(t, time.Minute, "paused after burst 2 in a new run", func() error {
		st := status(t, s, tenant)
		if st.Run <= runsBefore || st.State != workflows.SyncPaused {
			return fmt.Errorf("run %d %s; history:\n%s", st.Run, st.State,
				trace(runs(t, s, id)))
		}
		return nil
	})

	// Paused means not polling: a call ends and the lamp stays as it was.
	if _, err := s.Graph.ApplyAction(tenant, aino.ID, "call-end"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)
	if st, _ := s.OneCloud.LineState(pbxOrg, demoExt[0]); st != presence.Busy {
		t.Errorf("the paused sync changed extension %s to %s", demoExt[0], st)
	}

	// Every signal is in the server's history, and the runs handed the
	// unhandled ones on.
	recorded, carried := 0, 0
	rs := runs(t, s, id)
	for i, r := range rs {
		recorded += r.count(enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, "")
		if r.Next == "" {
			continue
		}
		in, err := r.carried()
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		carried += len(in.PendingSignals)
		t.Logf("run %d: %d signals recorded, %d carried into run %d", i+1,
			r.count(enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, ""), len(in.PendingSignals),
			in.Run)
	}
	if recorded != sent {
		t.Errorf("%d signals recorded over %d runs, %d sent", recorded, len(rs), sent)
	}
	t.Logf("%d signals over %d runs, %d carried across continue-as-new", sent, len(rs), carried)
}
