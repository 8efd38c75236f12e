package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

const (
	testOrg    = "org-7"
	testTenant = "0b3c2a6e-6f9e-4d7f-9a51-3a1f0c7e9d11"
)

// onboardingFixture runs Onboarding with recording mocks for the
// activities every path calls and for the PresenceSync child.
type onboardingFixture struct {
	env   *testsuite.TestWorkflowEnvironment
	start time.Time

	records   calls[RecordStageInput]
	reminders calls[RemindStaffInput]
	saStage   calls[string]
	saOrg     calls[string]
	saTenant  calls[string]
	childIDs  calls[string]
	childIn   calls[PresenceSyncInput]
}

func newOnboardingFixture(t *testing.T) *onboardingFixture {
	t.Helper()
	f := &onboardingFixture{env: newTestEnv(t)}
	f.start = f.env.Now()
	env := f.env

	env.OnActivity(ActivityRecordStage, mock.Anything, mock.Anything).Return(nil).
		Run(func(args mock.Arguments) { f.records.add(args.Get(1).(RecordStageInput), env.Now()) })
	env.OnActivity(ActivityRemindStaff, mock.Anything, mock.Anything).Return(nil).
		Run(func(args mock.Arguments) { f.reminders.add(args.Get(1).(RemindStaffInput), env.Now()) })

	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeyword(stageKey); ok {
			f.saStage.add(v, env.Now())
		}
		if v, ok := sa.GetKeyword(orgKey); ok {
			f.saOrg.add(v, env.Now())
		}
		if v, ok := sa.GetKeyword(tenantKey); ok {
			f.saTenant.add(v, env.Now())
		}
	})

	env.SetOnChildWorkflowStartedListener(
		func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
			f.childIDs.add(info.WorkflowExecution.ID, env.Now())
		})
	return f
}

// mockChild mocks the PresenceSync child: it starts and ends at once.
func (f *onboardingFixture) mockChild() {
	f.env.OnWorkflow(PresenceSyncWorkflow, mock.Anything, mock.Anything).Return(nil).
		Run(func(args mock.Arguments) { f.childIn.add(args.Get(1).(PresenceSyncInput), f.env.Now()) })
}

// query returns the status query's answer, or a status whose Stage says
// why there is none, so that callbacks never fail the test off its
// goroutine.
func (f *onboardingFixture) query() OnboardingStatus {
	v, err := f.env.QueryWorkflow(QueryStatus)
	if err != nil {
		return OnboardingStatus{Stage: Stage("query failed: " + err.Error())}
	}
	var s OnboardingStatus
	if err := v.Get(&s); err != nil {
		return OnboardingStatus{Stage: Stage("decode failed: " + err.Error())}
	}
	return s
}

// sameTime asserts two instants are equal whatever their locations.
func sameTime(t *testing.T, want, got time.Time, msg ...any) {
	t.Helper()
	assert.WithinDuration(t, want, got, 0, msg...)
}

func (f *onboardingFixture) at(d time.Duration, fn func()) {
	f.env.RegisterDelayedCallback(fn, d)
}

func (f *onboardingFixture) run() {
	f.env.ExecuteWorkflow(OnboardingWorkflow, OnboardingInput{
		OrgID: testOrg, OrgName: "Acme Oy", RegisteredAt: f.start,
	})
}

func (f *onboardingFixture) recordedStages() []Stage {
	in, _ := f.records.all()
	out := make([]Stage, 0, len(in))
	for _, r := range in {
		out = append(out, r.Stage)
	}
	return out
}

// mockVerifyOK mocks a successful verification and the child.
func (f *onboardingFixture) mockVerifyOK() {
	f.mockChild()
	f.env.OnActivity(ActivityVerifyConsent, mock.Anything,
		VerifyConsentInput{OrgID: testOrg, TenantID: testTenant}).
		Return(VerifyConsentResult{TenantID: testTenant, Roles: []string{"Presence.Read.All"}}, nil)
}

var testImport = ImportResult{
	Activated:       42,
	TeamsWithoutExt: 3,
	ExtWithoutTeams: 2,
	Ambiguous:       1,
	UnmatchedTeams:  []string{"Mia Virtanen <mia@acme.example>"},
	UnmatchedExts:   []string{"204 Reception"},
	AmbiguousUsers:  []string{"Juha Nieminen"},
}

func TestOnboardingApprovedToSyncing(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	f.mockVerifyOK()
	env.OnActivity(ActivityImportUsers, mock.Anything,
		ImportUsersInput{OrgID: testOrg, TenantID: testTenant}).
		After(10*time.Minute).Return(testImport, nil).Once()

	seen := map[string]OnboardingStatus{}
	f.at(time.Hour, func() {
		seen["pending"] = f.query()
		env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna", Note: "known customer"})
	})
	f.at(2*time.Hour, func() {
		seen["consent"] = f.query()
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.at(2*time.Hour+5*time.Minute, func() { seen["importing"] = f.query() })
	f.run()

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ImportResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, testImport, res, "the workflow returns the import counts")

	pending := seen["pending"]
	assert.Equal(t, StageAwaitingApproval, pending.Stage)
	sameTime(t, f.start, pending.StageSince)
	assert.Equal(t, testOrg, pending.OrgID)
	sameTime(t, f.start, pending.RegisteredAt)

	consent := seen["consent"]
	assert.Equal(t, StageAwaitingConsent, consent.Stage)
	assert.Equal(t, "staff:anna", consent.ApprovedBy)
	assert.Equal(t, "known customer", consent.DecisionNote)
	sameTime(t, f.start.Add(time.Hour), consent.StageSince)

	assert.Equal(t, StageImporting, seen["importing"].Stage)
	assert.Equal(t, testTenant, seen["importing"].TenantID, "verified before the import runs")

	final := f.query()
	assert.Equal(t, StageSyncing, final.Stage)
	assert.Equal(t, testTenant, final.TenantID)
	require.NotNil(t, final.Import)
	assert.Equal(t, 42, final.Import.Activated)
	assert.Empty(t, final.LastError)

	wantStages := []Stage{StageAwaitingApproval, StageAwaitingConsent, StageImporting, StageSyncing}
	assert.Equal(t, wantStages, f.recordedStages(), "the store mirrors each stage in order")
	records, _ := f.records.all()
	assert.Equal(t, "staff:anna", records[1].Actor)
	assert.Equal(t, "known customer", records[1].Note)
	assert.Equal(t, "admin:1", records[2].Actor)

	stages, _ := f.saStage.all()
	assert.Equal(t, []string{"awaiting-approval", "awaiting-consent", "importing", "syncing"}, stages)
	orgs, _ := f.saOrg.all()
	assert.Equal(t, []string{testOrg}, orgs, "the organisation attribute is set once")
	tenants, _ := f.saTenant.all()
	assert.Equal(t, []string{testTenant}, tenants)

	ids, _ := f.childIDs.all()
	assert.Equal(t, []string{PresenceSyncID(testTenant)}, ids)
	childIn, _ := f.childIn.all()
	require.Len(t, childIn, 1)
	assert.Equal(t, PresenceSyncInput{OrgID: testOrg, TenantID: testTenant}, childIn[0])
	assert.Zero(t, f.reminders.count(), "no reminder when staff decide within 3 days")
}

func TestOnboardingRejected(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	f.at(26*time.Hour, func() {
		env.SignalWorkflow(SignalReject, RejectSignal{Staff: "staff:ben", Note: "not a customer"})
	})
	f.run()

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ImportResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Zero(t, res.Activated)

	st := f.query()
	assert.Equal(t, StageRejected, st.Stage)
	assert.Equal(t, "staff:ben", st.RejectedBy)
	assert.Empty(t, st.ApprovedBy)
	assert.Equal(t, "not a customer", st.DecisionNote)
	sameTime(t, f.start.Add(26*time.Hour), st.StageSince)

	assert.Equal(t, []Stage{StageAwaitingApproval, StageRejected}, f.recordedStages())
	records, _ := f.records.all()
	assert.Equal(t, "staff:ben", records[1].Actor)
	stages, _ := f.saStage.all()
	assert.Equal(t, []string{"awaiting-approval", "rejected"}, stages)
	env.AssertActivityNotCalled(t, ActivityVerifyConsent, mock.Anything, mock.Anything)
	env.AssertWorkflowNotCalled(t, PresenceSyncWorkflow, mock.Anything, mock.Anything)
}

func TestOnboardingReminderThenExpiry(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	var beforeExpiry OnboardingStatus
	f.at(ExpireAfter-time.Hour, func() { beforeExpiry = f.query() })
	f.run()

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	reminders, when := f.reminders.all()
	require.Len(t, reminders, 1, "staff are reminded exactly once")
	assert.GreaterOrEqual(t, when[0].Sub(f.start), ReminderAfter)
	assert.Less(t, when[0].Sub(f.start), ReminderAfter+time.Minute)
	assert.GreaterOrEqual(t, reminders[0].Waiting, ReminderAfter)
	assert.Equal(t, "Acme Oy", reminders[0].OrgName)

	assert.Equal(t, StageAwaitingApproval, beforeExpiry.Stage)
	assert.True(t, beforeExpiry.Reminded)

	st := f.query()
	assert.Equal(t, StageExpired, st.Stage)
	assert.GreaterOrEqual(t, st.StageSince.Sub(f.start), ExpireAfter)
	assert.GreaterOrEqual(t, env.Now().Sub(f.start), ExpireAfter)
	assert.Equal(t, []Stage{StageAwaitingApproval, StageExpired}, f.recordedStages())
}

func TestOnboardingDeadlinesCountFromRegistration(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	registered := f.start.Add(-2 * 24 * time.Hour)
	env.ExecuteWorkflow(OnboardingWorkflow, OnboardingInput{
		OrgID: testOrg, OrgName: "Acme Oy", RegisteredAt: registered,
	})

	require.NoError(t, env.GetWorkflowError())
	_, when := f.reminders.all()
	require.Len(t, when, 1)
	sameTime(t, registered.Add(ReminderAfter), when[0])
	assert.Equal(t, StageExpired, f.query().Stage)
	sameTime(t, registered.Add(ExpireAfter), f.query().StageSince)
}

func TestOnboardingOverdueRegistrationExpiresWithoutReminder(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	env.ExecuteWorkflow(OnboardingWorkflow, OnboardingInput{
		OrgID: testOrg, OrgName: "Acme Oy", RegisteredAt: f.start.Add(-ExpireAfter - time.Hour),
	})

	require.NoError(t, env.GetWorkflowError())
	assert.Zero(t, f.reminders.count(), "no reminder for a registration already expired")
	assert.Equal(t, StageExpired, f.query().Stage)
	sameTime(t, f.start, f.query().StageSince)
}

func TestOnboardingConsentWithoutTenantIsReported(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	var st OnboardingStatus
	f.at(time.Hour, func() { env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"}) })
	f.at(2*time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{By: "admin:1"})
	})
	f.at(3*time.Hour, func() {
		st = f.query()
		env.CancelWorkflow()
	})
	f.run()

	assert.Equal(t, StageAwaitingConsent, st.Stage)
	assert.Equal(t, LastErrorConsentOther, st.LastErrorCode)
	assert.NotEmpty(t, st.LastError)
	env.AssertActivityNotCalled(t, ActivityVerifyConsent, mock.Anything, mock.Anything)
}

func TestOnboardingConsentFailedThenGranted(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	f.mockVerifyOK()
	env.OnActivity(ActivityImportUsers, mock.Anything, mock.Anything).Return(testImport, nil).Once()

	var afterFailure OnboardingStatus
	f.at(time.Hour, func() {
		env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"})
	})
	f.at(3*time.Hour, func() {
		env.SignalWorkflow(SignalConsentFailed, ConsentFailedSignal{
			Kind:        "cancelled",
			Code:        "access_denied",
			Description: "AADSTS65004: User declined to consent to access the app.",
		})
	})
	f.at(4*time.Hour, func() {
		afterFailure = f.query()
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.run()

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, StageAwaitingConsent, afterFailure.Stage, "a failed consent keeps waiting")
	sameTime(t, f.start.Add(time.Hour), afterFailure.StageSince,
		"the age of waiting for consent counts from approval")
	assert.Equal(t, LastErrorConsentCancelled, afterFailure.LastErrorCode)
	assert.Contains(t, afterFailure.LastError, "cancelled")
	assert.Contains(t, afterFailure.LastError, "access_denied")
	assert.Contains(t, afterFailure.LastError, "AADSTS65004")

	records, _ := f.records.all()
	require.Len(t, records, 5)
	assert.Equal(t, StageAwaitingConsent, records[2].Stage)
	assert.Contains(t, records[2].LastError, "AADSTS65004", "the store shows the reason too")

	final := f.query()
	assert.Equal(t, StageSyncing, final.Stage)
	assert.Empty(t, final.LastError, "a successful connection clears the old error")
	assert.Empty(t, final.LastErrorCode)
}

func TestOnboardingVerificationFailureReturnsToConsent(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	mismatch := temporal.NewNonRetryableApplicationError(
		"token tid differs from the tenant asked for", ErrTenantMismatch, nil)
	f.mockChild()
	env.OnActivity(ActivityVerifyConsent, mock.Anything, mock.Anything).
		Return(VerifyConsentResult{}, mismatch).Once()
	env.OnActivity(ActivityVerifyConsent, mock.Anything, mock.Anything).
		Return(VerifyConsentResult{TenantID: testTenant}, nil).Once()
	env.OnActivity(ActivityImportUsers, mock.Anything, mock.Anything).Return(testImport, nil).Once()

	var afterFailure OnboardingStatus
	f.at(time.Hour, func() { env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"}) })
	f.at(2*time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.at(3*time.Hour, func() {
		afterFailure = f.query()
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.run()

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, StageAwaitingConsent, afterFailure.Stage)
	assert.Equal(t, ErrTenantMismatch, afterFailure.LastErrorCode)
	assert.Contains(t, afterFailure.LastError, "tenant")
	assert.Empty(t, afterFailure.TenantID, "an unverified tenant is never recorded")

	env.AssertActivityNumberOfCalls(t, ActivityVerifyConsent, 2)
	assert.Equal(t, []Stage{
		StageAwaitingApproval, StageAwaitingConsent, StageImporting, StageAwaitingConsent,
		StageImporting, StageSyncing,
	}, f.recordedStages())
	records, _ := f.records.all()
	assert.NotEmpty(t, records[3].LastError)

	var res ImportResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, 42, res.Activated)
	assert.Equal(t, StageSyncing, f.query().Stage)
}

func TestOnboardingVerificationRetriesPassingErrorsBounded(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	env.OnActivity(ActivityVerifyConsent, mock.Anything, mock.Anything).
		Return(VerifyConsentResult{}, errors.New("token endpoint answered 503"))

	f.at(time.Hour, func() { env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"}) })
	f.at(2*time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	var st OnboardingStatus
	f.at(5*time.Hour, func() {
		st = f.query()
		env.CancelWorkflow()
	})
	f.run()

	env.AssertActivityNumberOfCalls(t, ActivityVerifyConsent,
		int(verifyConsentOptions.RetryPolicy.MaximumAttempts))
	assert.Equal(t, StageAwaitingConsent, st.Stage)
	assert.Equal(t, LastErrorVerifyFailed, st.LastErrorCode)
	assert.NotContains(t, st.LastError, "503", "the admin reads a sentence, not internals")
	assert.True(t, temporal.IsCanceledError(env.GetWorkflowError()))
}

func TestOnboardingIgnoresSignalsOutOfStage(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	f.mockVerifyOK()
	env.OnActivity(ActivityImportUsers, mock.Anything, mock.Anything).Return(testImport, nil).Once()

	var early OnboardingStatus
	f.at(time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
		env.SignalWorkflow(SignalConsentFailed, ConsentFailedSignal{Kind: "denied"})
		env.SignalWorkflow(SignalApprove, ApproveSignal{}) // no staff: invalid
	})
	f.at(2*time.Hour, func() {
		early = f.query()
		env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"})
	})
	f.at(3*time.Hour, func() {
		env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:carl"})
		env.SignalWorkflow(SignalReject, RejectSignal{Staff: "staff:carl"})
	})
	f.at(4*time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.run()

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, StageAwaitingApproval, early.Stage, "consent before approval means nothing")
	assert.Empty(t, early.LastError)
	env.AssertActivityNumberOfCalls(t, ActivityVerifyConsent, 1)

	st := f.query()
	assert.Equal(t, StageSyncing, st.Stage)
	assert.Equal(t, "staff:anna", st.ApprovedBy, "a second approval changes nothing")
	assert.Empty(t, st.RejectedBy)
	assert.Equal(t, []Stage{StageAwaitingApproval, StageAwaitingConsent, StageImporting, StageSyncing},
		f.recordedStages())
}

func TestOnboardingSyncStartFailure(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	env.OnActivity(ActivityVerifyConsent, mock.Anything, mock.Anything).
		Return(VerifyConsentResult{TenantID: testTenant}, nil)
	env.OnActivity(ActivityImportUsers, mock.Anything, mock.Anything).Return(testImport, nil)
	env.OnWorkflow(PresenceSyncWorkflow, mock.Anything, mock.Anything).
		Return(testsuite.ErrMockStartChildWorkflowFailed).Once()
	env.OnWorkflow(PresenceSyncWorkflow, mock.Anything, mock.Anything).Return(nil).Once()

	var afterFailure OnboardingStatus
	f.at(time.Hour, func() { env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:anna"}) })
	f.at(2*time.Hour, func() {
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.at(3*time.Hour, func() {
		afterFailure = f.query()
		env.SignalWorkflow(SignalConsentGranted, ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	f.run()

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, StageAwaitingConsent, afterFailure.Stage)
	assert.Equal(t, LastErrorSyncStartFailed, afterFailure.LastErrorCode)
	assert.Contains(t, afterFailure.LastError, "presence sync")
	assert.Equal(t, StageSyncing, f.query().Stage)
	env.AssertActivityNumberOfCalls(t, ActivityImportUsers, 2)
}

// TestOnboardingReconnect starts the onboarding again after a revocation:
// no staff decision is awaited, and consent leads to import and syncing.
func TestOnboardingReconnect(t *testing.T) {
	f := newOnboardingFixture(t)
	env := f.env
	f.mockVerifyOK()
	env.OnActivity(ActivityImportUsers, mock.Anything,
		ImportUsersInput{OrgID: testOrg, TenantID: testTenant}).Return(testImport, nil).Once()

	registered := f.start.Add(-90 * 24 * time.Hour)
	var waiting OnboardingStatus
	// Later than ReminderAfter and ExpireAfter both: neither timer exists.
	consentAt := ExpireAfter + time.Hour
	f.at(consentAt-time.Minute, func() { waiting = f.query() })
	f.at(consentAt, func() {
		env.SignalWorkflow(SignalApprove, ApproveSignal{Staff: "staff:carl"})
		env.SignalWorkflow(SignalConsentGranted,
			ConsentGrantedSignal{TenantID: testTenant, By: "admin:1"})
	})
	env.ExecuteWorkflow(OnboardingWorkflow, OnboardingInput{
		OrgID: testOrg, OrgName: "Acme Oy", RegisteredAt: registered, Reconnect: true,
	})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ImportResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, testImport, res)

	assert.Equal(t, StageAwaitingConsent, waiting.Stage, "a reconnect waits for consent only")
	assert.Equal(t, ApprovedEarlier, waiting.ApprovedBy)
	sameTime(t, f.start, waiting.StageSince, "it waits for consent from its start")
	sameTime(t, registered, waiting.RegisteredAt)

	final := f.query()
	assert.Equal(t, StageSyncing, final.Stage)
	assert.Equal(t, ApprovedEarlier, final.ApprovedBy, "a late approve signal changes nothing")
	assert.Equal(t, testTenant, final.TenantID)
	require.NotNil(t, final.Import)
	assert.Equal(t, 42, final.Import.Activated)

	assert.Equal(t, []Stage{StageAwaitingConsent, StageImporting, StageSyncing},
		f.recordedStages(), "awaiting-approval is never entered")
	stages, _ := f.saStage.all()
	assert.Equal(t, []string{"awaiting-consent", "importing", "syncing"}, stages)
	assert.Zero(t, f.reminders.count(), "staff are not reminded of a reconnect")
	ids, _ := f.childIDs.all()
	assert.Equal(t, []string{PresenceSyncID(testTenant)}, ids)
}
