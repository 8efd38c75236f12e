package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// errNotMocked is what a stub activity returns when a test forgot to mock
// it: the test then fails on an unexpected error instead of passing.
var errNotMocked = errors.New("activity called without a mock")

// Stub activities with the contract's signatures. They are registered by
// name only so that the tests can mock them; their bodies never run when a
// mock is set.
func stubRecordStage(context.Context, RecordStageInput) error { return errNotMocked }
func stubRemindStaff(context.Context, RemindStaffInput) error { return errNotMocked }
func stubVerifyConsent(context.Context, VerifyConsentInput) (VerifyConsentResult, error) {
	return VerifyConsentResult{}, errNotMocked
}
func stubImportUsers(context.Context, ImportUsersInput) (ImportResult, error) {
	return ImportResult{}, errNotMocked
}
func stubSyncPresence(context.Context, SyncPresenceInput) (SyncPresenceResult, error) {
	return SyncPresenceResult{}, errNotMocked
}
func stubRefreshUsers(context.Context, RefreshUsersInput) (RefreshUsersResult, error) {
	return RefreshUsersResult{}, errNotMocked
}
func stubReleaseLines(context.Context, ReleaseLinesInput) (ReleaseLinesResult, error) {
	return ReleaseLinesResult{}, errNotMocked
}
func stubMarkTenant(context.Context, MarkTenantInput) error { return errNotMocked }

// newTestEnv returns a test environment with both workflows and a stub per
// activity name registered.
func newTestEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.SetStartTime(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))

	env.RegisterWorkflowWithOptions(Onboarding, workflow.RegisterOptions{Name: OnboardingWorkflow})
	env.RegisterWorkflowWithOptions(PresenceSync, workflow.RegisterOptions{Name: PresenceSyncWorkflow})

	stubs := map[string]any{
		ActivityRecordStage:   stubRecordStage,
		ActivityRemindStaff:   stubRemindStaff,
		ActivityVerifyConsent: stubVerifyConsent,
		ActivityImportUsers:   stubImportUsers,
		ActivitySyncPresence:  stubSyncPresence,
		ActivityRefreshUsers:  stubRefreshUsers,
		ActivityReleaseLines:  stubReleaseLines,
		ActivityMarkTenant:    stubMarkTenant,
	}
	for name, fn := range stubs {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return env
}

// calls records what mocked activities received and when, on the
// workflow clock. Mocks run on their own goroutines, hence the lock.
type calls[T any] struct {
	mu   sync.Mutex
	in   []T
	when []time.Time
}

func (c *calls[T]) add(in T, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in = append(c.in, in)
	c.when = append(c.when, at)
}

func (c *calls[T]) all() ([]T, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.in...), append([]time.Time(nil), c.when...)
}

func (c *calls[T]) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.in)
}

// countBetween counts the calls made in [from, to) on the workflow clock.
func (c *calls[T]) countBetween(from, to time.Time) int {
	_, when := c.all()
	n := 0
	for _, w := range when {
		if !w.Before(from) && w.Before(to) {
			n++
		}
	}
	return n
}
