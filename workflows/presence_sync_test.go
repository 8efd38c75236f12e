package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

const (
	testWindow   = 5 * time.Minute
	testInterval = 2 * time.Second
)

// started is one activity start as the test environment saw it.
type started struct {
	name             string
	heartbeatTimeout time.Duration
	startToClose     time.Duration
	attempt          int32
}

// syncFixture runs PresenceSync with recording mocks for the cleanup
// activities; each test mocks SyncPresence and RefreshUsers itself.
type syncFixture struct {
	env   *testsuite.TestWorkflowEnvironment
	start time.Time

	starts   calls[started]
	releases calls[ReleaseLinesInput]
	marks    calls[MarkTenantInput]
	timers   calls[time.Duration]
	cancels  calls[string]
}

func newSyncFixture(t *testing.T) *syncFixture {
	t.Helper()
	f := &syncFixture{env: newTestEnv(t)}
	f.start = f.env.Now()
	env := f.env

	env.OnActivity(ActivityReleaseLines, mock.Anything, mock.Anything).
		Return(ReleaseLinesResult{Released: 12}, nil).
		Run(func(args mock.Arguments) { f.releases.add(args.Get(1).(ReleaseLinesInput), env.Now()) })
	env.OnActivity(ActivityMarkTenant, mock.Anything, mock.Anything).Return(nil).
		Run(func(args mock.Arguments) { f.marks.add(args.Get(1).(MarkTenantInput), env.Now()) })

	env.SetOnActivityStartedListener(
		func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			f.starts.add(started{
				name:             info.ActivityType.Name,
				heartbeatTimeout: info.HeartbeatTimeout,
				startToClose:     info.StartToCloseTimeout,
				attempt:          info.Attempt,
			}, env.Now())
		})
	env.SetOnActivityCanceledListener(func(info *activity.Info) {
		f.cancels.add(info.ActivityType.Name, env.Now())
	})
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { f.timers.add(d, env.Now()) })
	return f
}

var windowResult = SyncPresenceResult{Polls: 150, Pushes: 4, Requests: 150, Linked: 12}

// mockWindows makes every SyncPresence call last a full window.
func (f *syncFixture) mockWindows() {
	f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
		After(testWindow).Return(windowResult, nil)
}

func (f *syncFixture) mockRefresh() {
	f.env.OnActivity(ActivityRefreshUsers, mock.Anything, mock.Anything).
		Return(RefreshUsersResult{Linked: 1}, nil)
}

func (f *syncFixture) at(d time.Duration, fn func()) { f.env.RegisterDelayedCallback(fn, d) }

func (f *syncFixture) signal(d time.Duration, name string) {
	f.at(d, func() { f.env.SignalWorkflow(name, nil) })
}

func (f *syncFixture) run(in PresenceSyncInput) {
	f.env.ExecuteWorkflow(PresenceSyncWorkflow, in)
}

func (f *syncFixture) query() PresenceSyncStatus {
	v, err := f.env.QueryWorkflow(QueryStatus)
	if err != nil {
		return PresenceSyncStatus{State: SyncState("query failed: " + err.Error())}
	}
	var s PresenceSyncStatus
	if err := v.Get(&s); err != nil {
		return PresenceSyncStatus{State: SyncState("decode failed: " + err.Error())}
	}
	return s
}

// startsOf returns the offsets from the start at which the named activity
// started, with what it was started with.
func (f *syncFixture) startsOf(name string) ([]time.Duration, []started) {
	all, when := f.starts.all()
	var at []time.Duration
	var info []started
	for i, s := range all {
		if s.name == name {
			at = append(at, when[i].Sub(f.start))
			info = append(info, s)
		}
	}
	return at, info
}

func testSyncInput() PresenceSyncInput {
	return PresenceSyncInput{
		OrgID: testOrg, TenantID: testTenant, Interval: testInterval, Window: testWindow,
	}
}

// continuedInput returns the input that the run carried into the next.
func continuedInput(t *testing.T, err error) PresenceSyncInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can, "the run must continue as new")
	assert.Equal(t, PresenceSyncWorkflow, can.WorkflowType.Name)
	var next PresenceSyncInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

func signalNames(p []PendingSignal) []string {
	out := make([]string, 0, len(p))
	for _, s := range p {
		out = append(out, s.Name)
	}
	return out
}

func TestPresenceSyncWindowsRepeatThenContinueAsNew(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.mockRefresh()
	var mid PresenceSyncStatus
	f.at(12*time.Minute, func() { mid = f.query() })
	f.run(testSyncInput())

	require.True(t, f.env.IsWorkflowCompleted())
	next := continuedInput(t, f.env.GetWorkflowError())

	at, info := f.startsOf(ActivitySyncPresence)
	require.Len(t, at, MaxWindowsPerRun, "the run continues as new after a fixed number of windows")
	for i := range at {
		assert.Equal(t, time.Duration(i)*testWindow, at[i], "window %d follows the last at once", i)
		assert.Equal(t, testWindow+SyncWindowMargin, info[i].startToClose)
		assert.Equal(t, SyncHeartbeatTimeout, info[i].heartbeatTimeout)
	}

	refreshes, _ := f.startsOf(ActivityRefreshUsers)
	elapsed := time.Duration(MaxWindowsPerRun) * testWindow
	assert.Len(t, refreshes, int(elapsed/UserRefreshEvery), "users refreshed every 30 minutes")
	for i, r := range refreshes {
		assert.Equal(t, time.Duration(i+1)*UserRefreshEvery, r)
	}
	assert.Zero(t, f.timers.count(), "full windows need no timers: history per window is constant")
	assert.LessOrEqual(t, f.starts.count(), MaxWindowsPerRun+int(elapsed/UserRefreshEvery),
		"one activity per window plus the periodic refresh")

	assert.Equal(t, SyncRunning, mid.State)
	assert.Equal(t, 1, mid.Run)
	assert.Equal(t, int64(2), mid.Totals.Windows)
	assert.Equal(t, 12, mid.Linked)

	assert.Equal(t, 2, next.Run)
	assert.Equal(t, SyncTotals{
		Windows:  MaxWindowsPerRun,
		Polls:    MaxWindowsPerRun * 150,
		Pushes:   MaxWindowsPerRun * 4,
		Requests: MaxWindowsPerRun * 150,
	}, next.Totals)
	assert.Equal(t, 12, next.Linked)
	assert.False(t, next.Paused)
	assert.Empty(t, next.PendingSignals)
	assert.Equal(t, testInterval, next.Interval)
	assert.Equal(t, testWindow, next.Window)
	assert.Equal(t, testOrg, next.OrgID)
	assert.Equal(t, testTenant, next.TenantID)
	sameTime(t, f.start.Add(elapsed), next.LastWindow)
	sameTime(t, f.start.Add(8*UserRefreshEvery), next.LastUserSync)
}

func TestPresenceSyncDefaults(t *testing.T) {
	f := newSyncFixture(t)
	var inputs calls[SyncPresenceInput]
	f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
		After(DefaultSyncWindow).Return(windowResult, nil).
		Run(func(args mock.Arguments) { inputs.add(args.Get(1).(SyncPresenceInput), f.env.Now()) })
	var st PresenceSyncStatus
	f.at(DefaultSyncWindow+time.Minute, func() { st = f.query() })
	f.signal(DefaultSyncWindow+2*time.Minute, SignalDisconnect)
	f.run(PresenceSyncInput{OrgID: testOrg, TenantID: testTenant})

	require.NoError(t, f.env.GetWorkflowError())
	got, _ := inputs.all()
	require.NotEmpty(t, got)
	assert.Equal(t, DefaultSyncInterval, got[0].Interval)
	assert.Equal(t, DefaultSyncWindow, got[0].Window)
	_, info := f.startsOf(ActivitySyncPresence)
	assert.Equal(t, DefaultSyncWindow+SyncWindowMargin, info[0].startToClose)
	assert.Equal(t, 1, st.Run)
	assert.Equal(t, testTenant, st.TenantID)
}

func TestPresenceSyncEarlyWindowDoesNotSpin(t *testing.T) {
	f := newSyncFixture(t)
	f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
		Return(SyncPresenceResult{}, nil)
	f.signal(time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.NoError(t, f.env.GetWorkflowError())
	at, _ := f.startsOf(ActivitySyncPresence)
	require.NotEmpty(t, at)
	assert.LessOrEqual(t, len(at), int(time.Minute/testInterval)+1)
	for i := 1; i < len(at); i++ {
		assert.GreaterOrEqual(t, at[i]-at[i-1], testInterval, "windows are spaced by the interval")
	}
}

func TestPresenceSyncPauseResume(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.mockRefresh()
	var paused, resumed PresenceSyncStatus
	f.signal(7*time.Minute, SignalPause)
	f.signal(8*time.Minute, SignalPause) // already paused: ignored
	f.at(30*time.Minute, func() { paused = f.query() })
	f.signal(60*time.Minute, SignalResume)
	f.signal(61*time.Minute, SignalResume) // not paused: ignored
	f.at(62*time.Minute, func() { resumed = f.query() })
	f.signal(64*time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.NoError(t, f.env.GetWorkflowError())
	at, _ := f.startsOf(ActivitySyncPresence)
	assert.Equal(t, []time.Duration{0, testWindow, 60 * time.Minute}, at,
		"no window while paused; polling again at once on resume")
	cancelled, when := f.cancels.all()
	require.Len(t, cancelled, 2, "pause and disconnect each interrupt the running window")
	sameTime(t, f.start.Add(7*time.Minute), when[0])

	assert.Equal(t, SyncPaused, paused.State)
	sameTime(t, f.start.Add(7*time.Minute), paused.Since)
	assert.Equal(t, int64(1), paused.Totals.Windows, "the interrupted window has no summary")
	assert.Equal(t, SyncRunning, resumed.State)
	sameTime(t, f.start.Add(60*time.Minute), resumed.Since)

	refreshes, _ := f.startsOf(ActivityRefreshUsers)
	for _, r := range refreshes {
		assert.False(t, r >= 7*time.Minute && r < 60*time.Minute, "no Graph call while paused")
	}
}

func TestPresenceSyncResyncUsers(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.mockRefresh()
	f.signal(7*time.Minute, SignalResyncUsers)
	f.signal(20*time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.NoError(t, f.env.GetWorkflowError())
	refreshes, _ := f.startsOf(ActivityRefreshUsers)
	assert.Equal(t, []time.Duration{7 * time.Minute}, refreshes, "resync-users refreshes at once")
	at, _ := f.startsOf(ActivitySyncPresence)
	assert.Equal(t, []time.Duration{0, testWindow, 7 * time.Minute, 12 * time.Minute,
		17 * time.Minute}, at,
		"the window restarts after the refresh")
}

func TestPresenceSyncConfigChangedRestartsWindow(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.signal(7*time.Minute, SignalConfigChanged)
	f.signal(9*time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.NoError(t, f.env.GetWorkflowError())
	at, _ := f.startsOf(ActivitySyncPresence)
	assert.Equal(t, []time.Duration{0, testWindow, 7 * time.Minute}, at)
	f.env.AssertActivityNotCalled(t, ActivityRefreshUsers, mock.Anything, mock.Anything)
}

func TestPresenceSyncDisconnect(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.signal(7*time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.True(t, f.env.IsWorkflowCompleted())
	require.NoError(t, f.env.GetWorkflowError())

	releases, rwhen := f.releases.all()
	require.Len(t, releases, 1, "every extension is set back to available")
	assert.Equal(t, testTenant, releases[0].TenantID)
	assert.Equal(t, testOrg, releases[0].OrgID)
	assert.NotEmpty(t, releases[0].Reason)
	marks, mwhen := f.marks.all()
	require.Len(t, marks, 1)
	assert.Equal(t, TenantDisconnected, marks[0].State)
	assert.False(t, mwhen[0].Before(rwhen[0]), "lines are released before the tenant is marked")

	at, _ := f.startsOf(ActivitySyncPresence)
	assert.Len(t, at, 2, "no window after the disconnect")
	st := f.query()
	assert.Equal(t, SyncDisconnected, st.State)
}

func TestPresenceSyncRevocation(t *testing.T) {
	revoked := temporal.NewNonRetryableApplicationError(
		"AADSTS7000229: the client application is missing a service principal",
		ErrConsentRevoked, nil)

	t.Run("from SyncPresence", func(t *testing.T) {
		f := newSyncFixture(t)
		f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
			After(testWindow).Return(windowResult, nil).Once()
		f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
			After(time.Minute).Return(SyncPresenceResult{}, revoked).Once()
		f.run(testSyncInput())
		assertRevoked(t, f, 2)
	})

	t.Run("from RefreshUsers", func(t *testing.T) {
		f := newSyncFixture(t)
		f.mockWindows()
		f.env.OnActivity(ActivityRefreshUsers, mock.Anything, mock.Anything).
			Return(RefreshUsersResult{}, revoked).Once()
		f.signal(7*time.Minute, SignalResyncUsers)
		f.run(testSyncInput())
		assertRevoked(t, f, 2)
		f.env.AssertActivityNumberOfCalls(t, ActivityRefreshUsers, 1)
	})
}

// assertRevoked checks the end of a revoked sync: lines released, tenant
// revoked, no retry and no further window.
func assertRevoked(t *testing.T, f *syncFixture, windows int) {
	t.Helper()
	require.True(t, f.env.IsWorkflowCompleted())
	require.NoError(t, f.env.GetWorkflowError(), "a revoked sync ends, it does not fail")

	at, info := f.startsOf(ActivitySyncPresence)
	assert.Len(t, at, windows, "no retry loop after revocation")
	for _, s := range info {
		assert.Equal(t, int32(1), s.attempt)
	}
	releases, _ := f.releases.all()
	require.Len(t, releases, 1)
	assert.Equal(t, testTenant, releases[0].TenantID)
	marks, _ := f.marks.all()
	require.Len(t, marks, 1)
	assert.Equal(t, TenantRevoked, marks[0].State)
	assert.Contains(t, marks[0].Reason, "AADSTS7000229")

	st := f.query()
	assert.Equal(t, SyncRevoked, st.State)
	assert.Contains(t, st.LastError, ErrConsentRevoked)
}

func TestPresenceSyncPermissionMissingBacksOff(t *testing.T) {
	forbidden := temporal.NewNonRetryableApplicationError(
		"Graph answered 403 to getPresencesByUserId", ErrPermissionMissing, nil)

	t.Run("waits the long backoff", func(t *testing.T) {
		f := newSyncFixture(t)
		f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
			Return(SyncPresenceResult{}, forbidden).Once()
		f.mockWindows()
		f.mockRefresh()
		var failing, recovered PresenceSyncStatus
		f.at(5*time.Minute, func() { failing = f.query() })
		f.at(FailingBackoff+testWindow+time.Minute, func() { recovered = f.query() })
		f.signal(FailingBackoff+testWindow+2*time.Minute, SignalDisconnect)
		f.run(testSyncInput())

		require.NoError(t, f.env.GetWorkflowError())
		at, info := f.startsOf(ActivitySyncPresence)
		require.GreaterOrEqual(t, len(at), 2)
		assert.Equal(t, []time.Duration{0, FailingBackoff}, at[:2],
			"one attempt, then a long wait, never a tight loop")
		assert.Equal(t, int32(1), info[0].attempt)
		assert.Equal(t, SyncFailing, failing.State)
		assert.Contains(t, failing.LastError, ErrPermissionMissing)
		assert.Equal(t, SyncRunning, recovered.State)
		assert.Empty(t, recovered.LastError)
	})

	t.Run("a signal ends the wait", func(t *testing.T) {
		f := newSyncFixture(t)
		f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
			Return(SyncPresenceResult{}, forbidden).Once()
		f.mockWindows()
		f.signal(3*time.Minute, SignalConfigChanged)
		f.signal(4*time.Minute, SignalDisconnect)
		f.run(testSyncInput())

		require.NoError(t, f.env.GetWorkflowError())
		at, _ := f.startsOf(ActivitySyncPresence)
		assert.Equal(t, []time.Duration{0, 3 * time.Minute}, at)
	})
}

func TestPresenceSyncThrottledStatus(t *testing.T) {
	f := newSyncFixture(t)
	f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
		After(testWindow).Return(SyncPresenceResult{Polls: 100, Throttled: true}, nil).Once()
	f.mockWindows()
	var throttled, running PresenceSyncStatus
	f.at(testWindow+time.Minute, func() { throttled = f.query() })
	f.at(2*testWindow+time.Minute, func() { running = f.query() })
	f.signal(2*testWindow+2*time.Minute, SignalDisconnect)
	f.run(testSyncInput())

	require.NoError(t, f.env.GetWorkflowError())
	assert.Equal(t, SyncThrottled, throttled.State)
	assert.Equal(t, SyncRunning, running.State)
	assert.Equal(t, int64(250), running.Totals.Polls)
}

func TestPresenceSyncCancelledStillReleasesLines(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	f.at(7*time.Minute, func() { f.env.CancelWorkflow() })
	f.run(testSyncInput())

	require.True(t, f.env.IsWorkflowCompleted())
	assert.True(t, temporal.IsCanceledError(f.env.GetWorkflowError()))
	releases, _ := f.releases.all()
	assert.Len(t, releases, 1, "cleanup runs on a disconnected context")
	marks, _ := f.marks.all()
	require.Len(t, marks, 1)
	assert.Equal(t, TenantDisconnected, marks[0].State)
}

func TestPresenceSyncSignalsAcrossContinueAsNew(t *testing.T) {
	lastWindowStart := time.Duration(MaxWindowsPerRun-1) * testWindow

	t.Run("signals in the last window are carried", func(t *testing.T) {
		f := newSyncFixture(t)
		f.mockWindows()
		f.mockRefresh()
		f.at(lastWindowStart+time.Minute, func() {
			f.env.SignalWorkflow(SignalResyncUsers, nil)
			f.env.SignalWorkflow(SignalPause, nil)
		})
		f.run(testSyncInput())

		next := continuedInput(t, f.env.GetWorkflowError())
		assert.ElementsMatch(t, []string{SignalResyncUsers, SignalPause},
			signalNames(next.PendingSignals))
		assert.False(t, next.Paused, "carried signals are handled by the next run")
		refreshes, _ := f.startsOf(ActivityRefreshUsers)
		for _, r := range refreshes {
			assert.Less(t, r, lastWindowStart+time.Minute)
		}
	})

	t.Run("a signal at the boundary is carried or handled", func(t *testing.T) {
		f := newSyncFixture(t)
		f.mockWindows()
		f.mockRefresh()
		f.signal(time.Duration(MaxWindowsPerRun)*testWindow, SignalPause)
		f.run(testSyncInput())

		next := continuedInput(t, f.env.GetWorkflowError())
		carried := signalNames(next.PendingSignals)
		assert.True(t, next.Paused || len(carried) == 1 && carried[0] == SignalPause,
			"pause lost at the boundary: paused=%v carried=%v", next.Paused, carried)
	})

	t.Run("the next run handles carried signals first", func(t *testing.T) {
		f := newSyncFixture(t)
		f.mockWindows()
		in := testSyncInput()
		in.Run = 2
		in.Totals = SyncTotals{Windows: 50, Polls: 7500}
		in.LastUserSync = f.start
		in.PendingSignals = []PendingSignal{{Name: SignalPause}}
		var st PresenceSyncStatus
		f.at(time.Minute, func() { st = f.query() })
		f.signal(10*time.Minute, SignalResume)
		f.signal(11*time.Minute, SignalDisconnect)
		f.run(in)

		require.NoError(t, f.env.GetWorkflowError())
		assert.Equal(t, SyncPaused, st.State)
		assert.Equal(t, 2, st.Run)
		assert.Equal(t, int64(50), st.Totals.Windows, "totals are carried")
		at, _ := f.startsOf(ActivitySyncPresence)
		assert.Equal(t, []time.Duration{10 * time.Minute}, at)
	})

	t.Run("a carried disconnect ends the sync at once", func(t *testing.T) {
		f := newSyncFixture(t)
		in := testSyncInput()
		in.Run = 3
		in.PendingSignals = []PendingSignal{{Name: SignalDisconnect}, {Name: SignalPause}}
		f.run(in)

		require.NoError(t, f.env.GetWorkflowError())
		f.env.AssertActivityNotCalled(t, ActivitySyncPresence, mock.Anything, mock.Anything)
		marks, _ := f.marks.all()
		require.Len(t, marks, 1)
		assert.Equal(t, TenantDisconnected, marks[0].State)
		assert.Equal(t, 1, f.releases.count())
	})

	t.Run("continue as new when the server suggests it", func(t *testing.T) {
		f := newSyncFixture(t)
		f.env.SetContinueAsNewSuggested(true)
		in := testSyncInput()
		in.PendingSignals = []PendingSignal{{Name: SignalResyncUsers}}
		f.run(in)

		next := continuedInput(t, f.env.GetWorkflowError())
		assert.Equal(t, 2, next.Run)
		assert.Equal(t, []string{SignalResyncUsers}, signalNames(next.PendingSignals))
	})

	t.Run("a signal flood is bounded per run", func(t *testing.T) {
		f := newSyncFixture(t)
		f.mockWindows()
		for i := 1; i <= MaxSignalsPerRun; i++ {
			f.signal(time.Duration(i)*10*time.Second, SignalConfigChanged)
		}
		f.run(testSyncInput())

		continuedInput(t, f.env.GetWorkflowError())
		at, _ := f.startsOf(ActivitySyncPresence)
		assert.LessOrEqual(t, len(at), MaxSignalsPerRun+1)
	})
}

func TestPresenceSyncTakesTheDeploymentPaceWhereTheInputIsSilent(t *testing.T) {
	SetDeploymentPace(3*time.Second, 40*time.Second)
	t.Cleanup(func() { SetDeploymentPace(0, 0) })

	f := newSyncFixture(t)
	var inputs calls[SyncPresenceInput]
	f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
		After(40*time.Second).Return(windowResult, nil).
		Run(func(args mock.Arguments) { inputs.add(args.Get(1).(SyncPresenceInput), f.env.Now()) })
	f.signal(90*time.Second, SignalDisconnect)
	f.run(PresenceSyncInput{OrgID: testOrg, TenantID: testTenant, Window: time.Minute})

	require.NoError(t, f.env.GetWorkflowError())
	got, _ := inputs.all()
	require.NotEmpty(t, got)
	assert.Equal(t, 3*time.Second, got[0].Interval, "the deployment's interval")
	assert.Equal(t, time.Minute, got[0].Window, "the input's own window wins")
}

// Signals that reach the workflow together are handled in the order they
// were sent, not in the order of their channels: a resume sent before a
// pause leaves the sync paused.
func TestPresenceSyncHandlesABurstInTheOrderSent(t *testing.T) {
	f := newSyncFixture(t)
	f.mockWindows()
	var st PresenceSyncStatus
	f.at(time.Minute, func() {
		sent := f.env.Now()
		// Delivered in the opposite order, as a batch across channels can be.
		f.env.SignalWorkflow(SignalPause, SyncSignal{SentAt: sent.Add(-time.Second)})
		f.env.SignalWorkflow(SignalResume, SyncSignal{SentAt: sent.Add(-2 * time.Second)})
	})
	f.at(2*time.Minute, func() { st = f.query() })
	f.signal(3*time.Minute, SignalDisconnect)
	f.run(PresenceSyncInput{OrgID: testOrg, TenantID: testTenant, Interval: testInterval,
		Window: testWindow})

	require.NoError(t, f.env.GetWorkflowError())
	assert.Equal(t, SyncPaused, st.State, "the pause was sent last")
}
