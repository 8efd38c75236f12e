package workflows

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Deadlines of a registration that waits for a staff decision, counted
// from OnboardingInput.RegisteredAt. Waiting for consent has no deadline.
const (
	ReminderAfter = 3 * 24 * time.Hour
	ExpireAfter   = 30 * 24 * time.Hour
)

// maxErrorText bounds the text a consent callback can put into history
// and onto the admin's page.
const maxErrorText = 500

// Typed keys of the search attributes named in contract.go.
var (
	stageKey  = temporal.NewSearchAttributeKeyKeyword(SearchAttrStage)
	orgKey    = temporal.NewSearchAttributeKeyKeyword(SearchAttrOrg)
	tenantKey = temporal.NewSearchAttributeKeyKeyword(SearchAttrTenant)
)

// Activity options of the Onboarding workflow, chosen per activity.
var (
	// RecordStage writes one row; it retries for about seven minutes and
	// then gives up, because the workflow's status stays the truth and the
	// next stage change writes the whole stage again.
	recordStageOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	}

	// RemindStaff is best effort: a missed reminder must not hold up a
	// decision that arrives meanwhile.
	remindStaffOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    5 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    5,
		},
	}

	// VerifyConsent gets a token and reads the service principal: seconds.
	// A verdict from Microsoft is final; passing faults get five tries
	// (about half a minute) while the admin waits on the page.
	verifyConsentOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    5,
			NonRetryableErrorTypes: []string{
				ErrConsentRevoked, ErrPermissionMissing, ErrTenantMismatch,
				ErrTenantTaken, ErrCredentials,
			},
		},
	}

	// ImportUsers pages through every user and the organisation's
	// extensions: minutes for a large tenant. It stores links
	// idempotently, so a retry is safe.
	importUsersOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    5 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    2 * time.Minute,
			MaximumAttempts:    5,
			NonRetryableErrorTypes: []string{
				ErrConsentRevoked, ErrPermissionMissing, ErrCredentials,
			},
		},
	}
)

// Onboarding takes an organisation from registration to a running presence
// sync: it waits for a staff decision (reminding staff after ReminderAfter,
// expiring after ExpireAfter), then for the admin's Microsoft consent,
// verifies the consent, imports the users, starts the tenant's
// PresenceSync workflow and returns the import counts. A Reconnect input
// skips the staff decision and starts at the consent. A rejected or
// expired registration ends with an empty result and no error: the stage
// in the status query and the store says which. Its ID is OnboardingID.
func Onboarding(ctx workflow.Context, in OnboardingInput) (ImportResult, error) {
	if in.OrgID == "" {
		return ImportResult{}, temporal.NewNonRetryableApplicationError(
			"onboarding input has no organisation id", "InvalidInput", nil)
	}

	o := newOnboarding(ctx, in)
	err := workflow.SetQueryHandler(ctx, QueryStatus, func() (OnboardingStatus, error) {
		return o.snapshot(), nil
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("set status query handler: %w", err)
	}

	if err := workflow.UpsertTypedSearchAttributes(ctx, orgKey.ValueSet(in.OrgID)); err != nil {
		o.log.Error("Upsert organisation search attribute failed", "error", err)
	}
	if in.Reconnect {
		// Staff approved this organisation in its first onboarding; a
		// reconnect after a revocation or a disconnect needs only consent.
		o.status.ApprovedBy = ApprovedEarlier
		o.log.Info("Reconnecting Teams: approval was given earlier")
		o.enter(ctx, StageAwaitingConsent, "", "reconnect after the tenant was "+
			"revoked or disconnected")
	} else {
		o.enter(ctx, StageAwaitingApproval, "", "")
		approved, err := o.awaitDecision(ctx)
		if err != nil || !approved {
			o.drainIgnored()
			return ImportResult{}, err
		}
	}

	for {
		granted, err := o.awaitConsent(ctx)
		if err != nil {
			return ImportResult{}, err
		}

		res, ok, err := o.connect(ctx, granted)
		if err != nil {
			return ImportResult{}, err
		}
		if ok {
			o.drainIgnored()
			return res, nil
		}
	}
}

// onboarding is the state of one Onboarding run.
type onboarding struct {
	in     OnboardingInput
	status OnboardingStatus
	log    log.Logger

	approve        workflow.ReceiveChannel
	reject         workflow.ReceiveChannel
	consentGranted workflow.ReceiveChannel
	consentFailed  workflow.ReceiveChannel
}

func newOnboarding(ctx workflow.Context, in OnboardingInput) *onboarding {
	return &onboarding{
		in: in,
		status: OnboardingStatus{
			OrgID:        in.OrgID,
			RegisteredAt: in.RegisteredAt,
		},
		log: log.With(workflow.GetLogger(ctx), "org", in.OrgID),

		approve:        workflow.GetSignalChannel(ctx, SignalApprove),
		reject:         workflow.GetSignalChannel(ctx, SignalReject),
		consentGranted: workflow.GetSignalChannel(ctx, SignalConsentGranted),
		consentFailed:  workflow.GetSignalChannel(ctx, SignalConsentFailed),
	}
}

// snapshot copies the status so that a query never shares the import lists
// with the running workflow.
func (o *onboarding) snapshot() OnboardingStatus {
	s := o.status
	if s.Import != nil {
		imp := *s.Import
		s.Import = &imp
	}
	return s
}

// awaitDecision waits in awaiting-approval for approve or reject, reminds
// staff once and expires the registration. It reports whether the
// organisation was approved.
func (o *onboarding) awaitDecision(ctx workflow.Context) (bool, error) {
	now := workflow.Now(ctx)
	base := o.in.RegisteredAt
	if base.IsZero() || base.After(now) {
		base = now
	}

	timerCtx, cancelTimers := workflow.WithCancel(ctx)
	defer cancelTimers()
	remind := workflow.NewTimer(timerCtx, base.Add(ReminderAfter).Sub(now))
	expire := workflow.NewTimer(timerCtx, base.Add(ExpireAfter).Sub(now))
	remindFired := false

	for {
		var (
			approval       *ApproveSignal
			rejection      *RejectSignal
			remindDue      bool
			expired        bool
			cancelled      bool
			grantedIgnored ConsentGrantedSignal
			failedIgnored  ConsentFailedSignal
		)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(o.approve, func(c workflow.ReceiveChannel, _ bool) {
			var s ApproveSignal
			if c.ReceiveAsync(&s) {
				approval = &s
			}
		})
		sel.AddReceive(o.reject, func(c workflow.ReceiveChannel, _ bool) {
			var s RejectSignal
			if c.ReceiveAsync(&s) {
				rejection = &s
			}
		})
		sel.AddReceive(o.consentGranted, func(c workflow.ReceiveChannel, _ bool) {
			if c.ReceiveAsync(&grantedIgnored) {
				o.ignore(SignalConsentGranted)
			}
		})
		sel.AddReceive(o.consentFailed, func(c workflow.ReceiveChannel, _ bool) {
			if c.ReceiveAsync(&failedIgnored) {
				o.ignore(SignalConsentFailed)
			}
		})
		if !remindFired {
			sel.AddFuture(remind, func(workflow.Future) { remindFired, remindDue = true, true })
		}
		sel.AddFuture(expire, func(workflow.Future) { expired = true })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.Select(ctx)

		switch {
		case cancelled || ctx.Err() != nil:
			return false, ctx.Err()

		case approval != nil:
			if approval.Staff == "" {
				o.log.Warn("Approval without a staff member ignored")
				continue
			}
			o.status.ApprovedBy = approval.Staff
			o.status.DecisionNote = clip(approval.Note)
			o.log.Info("Registration approved", "staff", approval.Staff)
			o.enter(ctx, StageAwaitingConsent, approval.Staff, o.status.DecisionNote)
			return true, nil

		case rejection != nil:
			if rejection.Staff == "" {
				o.log.Warn("Rejection without a staff member ignored")
				continue
			}
			o.status.RejectedBy = rejection.Staff
			o.status.DecisionNote = clip(rejection.Note)
			o.log.Info("Registration rejected", "staff", rejection.Staff)
			o.enter(ctx, StageRejected, rejection.Staff, o.status.DecisionNote)
			return false, nil

		case remindDue:
			if waited := workflow.Now(ctx).Sub(base); waited < ExpireAfter {
				o.remindStaff(ctx, waited)
			}

		case expired:
			o.log.Info("Registration expired without a decision")
			o.enter(ctx, StageExpired, "", "no staff decision within "+ExpireAfter.String())
			return false, nil
		}
	}
}

// remindStaff asks staff once to decide; a failure is logged, not fatal.
func (o *onboarding) remindStaff(ctx workflow.Context, waiting time.Duration) {
	in := RemindStaffInput{OrgID: o.in.OrgID, OrgName: o.in.OrgName, Waiting: waiting}
	actx := workflow.WithActivityOptions(ctx, remindStaffOptions)
	err := workflow.ExecuteActivity(actx, ActivityRemindStaff, in).Get(ctx, nil)
	if err != nil {
		o.log.Warn("Reminding staff failed", "error", err)
		return
	}
	o.status.Reminded = true
	o.log.Info("Staff reminded of a pending registration", "waiting", waiting)
}

// awaitConsent waits in awaiting-consent, with no deadline, for a
// consent-granted signal with a tenant. A consent-failed signal records
// its reason for the admin and keeps waiting.
func (o *onboarding) awaitConsent(ctx workflow.Context) (ConsentGrantedSignal, error) {
	for {
		var (
			granted   *ConsentGrantedSignal
			failed    *ConsentFailedSignal
			cancelled bool
			approve   ApproveSignal
			reject    RejectSignal
		)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(o.consentGranted, func(c workflow.ReceiveChannel, _ bool) {
			var s ConsentGrantedSignal
			if c.ReceiveAsync(&s) {
				granted = &s
			}
		})
		sel.AddReceive(o.consentFailed, func(c workflow.ReceiveChannel, _ bool) {
			var s ConsentFailedSignal
			if c.ReceiveAsync(&s) {
				failed = &s
			}
		})
		sel.AddReceive(o.approve, func(c workflow.ReceiveChannel, _ bool) {
			if c.ReceiveAsync(&approve) {
				o.ignore(SignalApprove)
			}
		})
		sel.AddReceive(o.reject, func(c workflow.ReceiveChannel, _ bool) {
			if c.ReceiveAsync(&reject) {
				o.ignore(SignalReject)
			}
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.Select(ctx)

		switch {
		case cancelled || ctx.Err() != nil:
			return ConsentGrantedSignal{}, ctx.Err()

		case granted != nil:
			if granted.TenantID == "" || len(granted.TenantID) > 64 {
				o.log.Warn("Consent granted without a usable tenant id",
					"length", len(granted.TenantID))
				o.status.LastError = "Microsoft's answer named no usable tenant. Try again."
				o.status.LastErrorCode = LastErrorConsentOther
				o.record(ctx, "", "")
				continue
			}
			return *granted, nil

		case failed != nil:
			code, text := describeConsentFailure(*failed)
			o.log.Info("Consent failed at Microsoft", "code", code, "microsoftCode", failed.Code)
			o.status.LastError, o.status.LastErrorCode = text, code
			o.record(ctx, "", "")
		}
	}
}

// connect verifies a granted consent, imports the users and starts the
// presence sync. ok false means the organisation is back in
// awaiting-consent with LastError saying why.
func (o *onboarding) connect(
	ctx workflow.Context, granted ConsentGrantedSignal,
) (res ImportResult, ok bool, err error) {
	o.status.LastError, o.status.LastErrorCode = "", ""
	o.enter(ctx, StageImporting, granted.By, "")

	var verified VerifyConsentResult
	vin := VerifyConsentInput{OrgID: o.in.OrgID, TenantID: granted.TenantID}
	vctx := workflow.WithActivityOptions(ctx, verifyConsentOptions)
	err = workflow.ExecuteActivity(vctx, ActivityVerifyConsent, vin).Get(ctx, &verified)
	if ctx.Err() != nil {
		return ImportResult{}, false, ctx.Err()
	}
	if err == nil && verified.TenantID != "" && verified.TenantID != granted.TenantID {
		err = temporal.NewNonRetryableApplicationError(
			"verified tenant differs from the consented tenant", ErrTenantMismatch, nil)
	}
	if err != nil {
		code, text := describeVerifyFailure(err)
		o.log.Warn("Consent verification failed", "tenant", granted.TenantID,
			"code", code, "error", err)
		o.backToConsent(ctx, code, text)
		return ImportResult{}, false, nil
	}

	tenant := granted.TenantID
	o.status.TenantID = tenant
	if err := workflow.UpsertTypedSearchAttributes(ctx, tenantKey.ValueSet(tenant)); err != nil {
		o.log.Error("Upsert tenant search attribute failed", "error", err)
	}
	o.log.Info("Consent verified", "tenant", tenant, "roles", verified.Roles)

	iin := ImportUsersInput{OrgID: o.in.OrgID, TenantID: tenant}
	ictx := workflow.WithActivityOptions(ctx, importUsersOptions)
	err = workflow.ExecuteActivity(ictx, ActivityImportUsers, iin).Get(ctx, &res)
	if ctx.Err() != nil {
		return ImportResult{}, false, ctx.Err()
	}
	if err != nil {
		code, text := describeImportFailure(err)
		o.log.Warn("Importing users failed", "tenant", tenant, "code", code, "error", err)
		o.backToConsent(ctx, code, text)
		return ImportResult{}, false, nil
	}
	imported := res
	o.status.Import = &imported
	o.log.Info("Users imported", "tenant", tenant, "activated", res.Activated,
		"teamsWithoutExtension", res.TeamsWithoutExt, "ambiguous", res.Ambiguous)

	if err := o.startSync(ctx, tenant); err != nil {
		if ctx.Err() != nil {
			return ImportResult{}, false, ctx.Err()
		}
		o.log.Error("Starting the presence sync failed", "tenant", tenant, "error", err)
		o.backToConsent(ctx, LastErrorSyncStartFailed,
			"The users were imported but the presence sync could not be started. "+
				"Connect again; Setera has the details.")
		return ImportResult{}, false, nil
	}

	o.enter(ctx, StageSyncing, "", "")
	return res, true, nil
}

// startSync starts the tenant's PresenceSync as an abandoned child and
// waits only until it has started. A sync already running for the tenant
// (the same organisation connecting again) is kept as it is.
func (o *onboarding) startSync(ctx workflow.Context, tenant string) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            PresenceSyncID(tenant),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			orgKey.ValueSet(o.in.OrgID), tenantKey.ValueSet(tenant)),
	})
	in := PresenceSyncInput{OrgID: o.in.OrgID, TenantID: tenant}
	child := workflow.ExecuteChildWorkflow(cctx, PresenceSyncWorkflow, in)

	var exec workflow.Execution
	err := child.GetChildWorkflowExecution().Get(ctx, &exec)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		o.log.Info("Presence sync already running", "tenant", tenant)
		return nil
	}
	if err != nil {
		return fmt.Errorf("start presence sync for tenant %s: %w", tenant, err)
	}
	o.log.Info("Presence sync started", "tenant", tenant, "runId", exec.RunID)
	return nil
}

// backToConsent returns to awaiting-consent with a reason for the admin.
func (o *onboarding) backToConsent(ctx workflow.Context, code, text string) {
	o.status.LastError, o.status.LastErrorCode = text, code
	o.enter(ctx, StageAwaitingConsent, "", "")
}

// enter moves to a stage: status, search attribute, then the store.
func (o *onboarding) enter(ctx workflow.Context, stage Stage, actor, note string) {
	o.status.Stage = stage
	o.status.StageSince = workflow.Now(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, stageKey.ValueSet(string(stage))); err != nil {
		o.log.Error("Upsert stage search attribute failed", "stage", stage, "error", err)
	}
	o.record(ctx, actor, note)
}

// record mirrors the current stage and error into the store. A failure is
// logged: the next record writes the whole stage again.
func (o *onboarding) record(ctx workflow.Context, actor, note string) {
	in := RecordStageInput{
		OrgID:     o.in.OrgID,
		Stage:     o.status.Stage,
		Actor:     actor,
		Note:      note,
		LastError: o.status.LastError,
		At:        workflow.Now(ctx),
	}
	actx := workflow.WithActivityOptions(ctx, recordStageOptions)
	if err := workflow.ExecuteActivity(actx, ActivityRecordStage, in).Get(ctx, nil); err != nil {
		o.log.Warn("Recording the stage in the store failed", "stage", in.Stage, "error", err)
	}
}

// ignore logs a signal that means nothing in the current stage.
func (o *onboarding) ignore(signal string) {
	o.log.Info("Signal ignored in this stage", "signal", signal, "stage", o.status.Stage)
}

// drainIgnored consumes and logs the signals left when the workflow ends,
// so that each is accounted for in the log rather than dropped unseen.
func (o *onboarding) drainIgnored() {
	var (
		approve ApproveSignal
		reject  RejectSignal
		granted ConsentGrantedSignal
		failed  ConsentFailedSignal
	)
	for o.approve.ReceiveAsync(&approve) {
		o.ignore(SignalApprove)
	}
	for o.reject.ReceiveAsync(&reject) {
		o.ignore(SignalReject)
	}
	for o.consentGranted.ReceiveAsync(&granted) {
		o.ignore(SignalConsentGranted)
	}
	for o.consentFailed.ReceiveAsync(&failed) {
		o.ignore(SignalConsentFailed)
	}
}

// describeConsentFailure turns a consent-failed signal into a code and a
// sentence for the admin that keeps Microsoft's code and description.
func describeConsentFailure(s ConsentFailedSignal) (code, text string) {
	switch s.Kind {
	case "cancelled":
		code, text = LastErrorConsentCancelled, "Consent was cancelled at Microsoft."
	case "denied":
		code, text = LastErrorConsentDenied, "Microsoft did not grant the consent."
	default:
		code, text = LastErrorConsentOther, "The consent at Microsoft failed."
	}
	if s.Code != "" {
		text += " Code: " + clip(s.Code) + "."
	}
	if s.Description != "" {
		text += " " + clip(s.Description)
	}
	return code, text + " You can try again."
}

// describeVerifyFailure explains a failed VerifyConsent to the admin.
func describeVerifyFailure(err error) (code, text string) {
	switch code = errorType(err); code {
	case ErrConsentRevoked:
		text = "Microsoft reports that OneSync is not consented in this tenant. " +
			"Grant the consent again."
	case ErrPermissionMissing:
		text = "The consent lacks a permission OneSync needs. Grant the consent again " +
			"as a global administrator and accept every permission."
	case ErrTenantMismatch:
		text = "The tenant Microsoft confirmed is not the tenant of the consent. " +
			"Grant the consent again from this page."
	case ErrTenantTaken:
		text = "This Microsoft tenant is already connected to another organisation."
	case ErrCredentials:
		text = "OneSync could not sign in to Microsoft. Setera has been alerted; " +
			"try again later."
	default:
		code = LastErrorVerifyFailed
		text = "The consent could not be verified just now. Try again in a few minutes."
	}
	return code, text
}

// describeImportFailure explains a failed ImportUsers to the admin.
func describeImportFailure(err error) (code, text string) {
	switch code = errorType(err); code {
	case ErrConsentRevoked, ErrPermissionMissing, ErrCredentials:
		_, text = describeVerifyFailure(err)
		return code, "The users could not be imported. " + text
	default:
		return LastErrorImportFailed,
			"The users could not be imported just now. Connect again in a few minutes."
	}
}

// errorType returns the type of the application error in err's chain, or
// "" when err carries none.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// clip bounds outside text before it enters history.
func clip(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
