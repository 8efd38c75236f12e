package workflows

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// C6 in the workflow, for every way the verification can refuse a tenant
// that was edited by hand: never consented (revoked), bound to another
// organisation (taken), a token for another tenant (mismatch), or a
// verification that names a tenant other than the claimed one. The tenant
// is never recorded, no user is imported, no sync starts, and the
// organisation waits for consent again with the reason.
func TestCasesC6EditedTenantIsNeverAccepted(t *testing.T) {
	other := "9f9f9f9f-6f9e-4d7f-9a51-3a1f0c7e9d11"
	cases := []struct {
		name   string
		result VerifyConsentResult
		err    error
		code   string
	}{
		{"never consented", VerifyConsentResult{}, temporal.NewNonRetryableApplicationError(
			"AADSTS65001", ErrConsentRevoked, nil), ErrConsentRevoked},
		{"no such tenant", VerifyConsentResult{}, temporal.NewNonRetryableApplicationError(
			"AADSTS90002", ErrConsentRevoked, nil), ErrConsentRevoked},
		{"another organisation's tenant", VerifyConsentResult{},
			temporal.NewNonRetryableApplicationError("taken", ErrTenantTaken, nil), ErrTenantTaken},
		{"token of another tenant", VerifyConsentResult{},
			temporal.NewNonRetryableApplicationError("tid", ErrTenantMismatch, nil),
			ErrTenantMismatch},
		{"verified another tenant", VerifyConsentResult{TenantID: other}, nil, ErrTenantMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOnboardingFixture(t)
			env := f.env
			f.mockChild()
			env.OnActivity(ActivityVerifyConsent, mock.Anything, mock.Anything).
				Return(tc.result, tc.err)
			env.OnActivity(ActivityImportUsers, mock.Anything, mock.Anything).
				Return(testImport, nil)

			var st OnboardingStatus
			f.at(time.Hour, func() {
				env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"})
			})
			f.at(2*time.Hour, func() {
				env.SignalWorkflow(SignalConsentGranted,
					ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
			})
			f.at(3*time.Hour, func() {
				st = f.query()
				env.CancelWorkflow()
			})
			f.run()

			assert.Equal(t, StageAwaitingConsent, st.Stage)
			assert.Equal(t, tc.code, st.LastErrorCode)
			assert.NotEmpty(t, st.LastError)
			assert.Empty(t, st.TenantID, "an unverified tenant is never recorded")
			assert.Nil(t, st.Import)
			env.AssertActivityNumberOfCalls(t, ActivityVerifyConsent, 1)
			env.AssertActivityNotCalled(t, ActivityImportUsers, mock.Anything, mock.Anything)
			assert.Zero(t, f.childIDs.count(), "no presence sync for an unverified tenant")
			assert.Zero(t, f.saTenant.count(), "no tenant search attribute either")
		})
	}
}

// effectivelyPaused applies carried signals, in order, to a run that
// starts paused or not, as the next run's handleQueue does.
func effectivelyPaused(paused bool, carried []string) bool {
	for _, s := range carried {
		switch s {
		case SignalPause:
			paused = true
		case SignalResume:
			paused = false
		}
	}
	return paused
}

// C10 swept over the moments around the end of a run: pause, resume and
// resync-users sent alone or together, just before, at and just after the
// last window ends. Each is handled in the old run or carried, in order,
// into the new one: the pause state the next run ends up with is the one
// the signals asked for, and a resync is done or still due.
func TestCasesC10SignalsAroundTheEndOfARun(t *testing.T) {
	end := time.Duration(MaxWindowsPerRun) * testWindow
	offsets := []time.Duration{-testWindow + time.Second, -time.Second, -time.Millisecond, 0}
	batches := []struct {
		signals    []string
		wantPaused bool
	}{
		{[]string{SignalPause}, true},
		{[]string{SignalPause, SignalResume}, false},
		{[]string{SignalResume, SignalPause}, true},
		{[]string{SignalResyncUsers}, false},
		{[]string{SignalPause, SignalResyncUsers}, true},
	}
	for _, off := range offsets {
		for _, b := range batches {
			name := fmt.Sprintf("%v at end%+v", b.signals, off)
			t.Run(name, func(t *testing.T) {
				f := newSyncFixture(t)
				f.mockWindows()
				f.mockRefresh()
				at := end + off
				f.at(at, func() {
					for _, s := range b.signals {
						f.env.SignalWorkflow(s, nil)
					}
				})
				f.run(testSyncInput())

				var can *workflow.ContinueAsNewError
				err := f.env.GetWorkflowError()
				require.True(t, errors.As(err, &can), "the run must continue as new: %v", err)
				next := continuedInput(t, err)
				carried := signalNames(next.PendingSignals)
				assert.Equal(t, b.wantPaused, effectivelyPaused(next.Paused, carried),
					"paused=%v carried=%v", next.Paused, carried)

				if slices.Contains(b.signals, SignalResyncUsers) {
					refreshes, _ := f.startsOf(ActivityRefreshUsers)
					done := slices.ContainsFunc(refreshes, func(r time.Duration) bool {
						return r >= at
					})
					assert.True(t, done || slices.Contains(carried, SignalResyncUsers),
						"resync-users lost: refreshes %v, carried %v", refreshes, carried)
				}
				for _, s := range carried {
					assert.Contains(t, presenceSignals, s)
				}
			})
		}
	}
}

// runOnce runs one PresenceSync run from in with SyncPresence answering as
// window says, and returns what the run carried on with and how much it
// did: activities scheduled, timers started.
func runOnce(t *testing.T, in PresenceSyncInput, window func(*syncFixture)) (
	next PresenceSyncInput, activities, timers int) {
	t.Helper()
	f := newSyncFixture(t)
	window(f)
	f.mockRefresh()
	f.run(in)
	next = continuedInput(t, f.env.GetWorkflowError())
	all, _ := f.starts.all()
	for _, s := range all {
		// Retries of an attempt happen on the server and add no events.
		if s.attempt == 1 {
			activities++
		}
	}
	return next, activities, f.timers.count()
}

// C11 for the windows that make the most history per hour: a window that
// ends at once (no linked users, every poll answered quickly), a window
// that fails after its retries, and a window throttled at once. Run after
// run, each continues as new after a bounded amount of work, so 30 days at
// a 2-second interval is only more runs, never a longer one. One run's
// work is far below Temporal's 50,000 events: an activity costs about 6
// events and a timer about 3.
func TestCasesC11EveryRunStaysSmall(t *testing.T) {
	scenarios := map[string]func(*syncFixture){
		"window ends at once": func(f *syncFixture) {
			f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
				Return(SyncPresenceResult{}, nil)
		},
		"window fails": func(f *syncFixture) {
			f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
				Return(SyncPresenceResult{}, errors.New("graph unreachable"))
		},
		"window throttled": func(f *syncFixture) {
			f.env.OnActivity(ActivitySyncPresence, mock.Anything, mock.Anything).
				After(testInterval).Return(SyncPresenceResult{Throttled: true, Polls: 1}, nil)
		},
	}
	const eventsPerActivity, eventsPerTimer, maxEvents = 6, 3, 50000
	for name, window := range scenarios {
		t.Run(name, func(t *testing.T) {
			in := testSyncInput()
			in.Interval = DefaultSyncInterval
			for run := 1; run <= 3; run++ {
				next, activities, timers := runOnce(t, in, window)
				require.Equal(t, run+1, next.Run)
				events := activities*eventsPerActivity + timers*eventsPerTimer
				assert.Less(t, events, maxEvents/20,
					"run %d: %d activities and %d timers, about %d events", run, activities,
					timers, events)
				assert.LessOrEqual(t, len(next.PendingSignals), MaxSignalsPerRun)
				assert.GreaterOrEqual(t, next.Totals.Windows, in.Totals.Windows,
					"totals are carried")
				in = next
			}
		})
	}
}
