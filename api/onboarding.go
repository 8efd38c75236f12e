package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// temporalTimeout bounds every start, signal and query a page makes, so a
// slow cluster gives a page that says so instead of a hung browser.
const temporalTimeout = 5 * time.Second

var (
	stageKey = temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrStage)
	orgKey   = temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrOrg)
)

// errAlreadyStarted means the organisation's onboarding already exists.
var errAlreadyStarted = errors.New("onboarding already started")

// startOnboarding starts the organisation's Onboarding workflow. The ID
// and the reject-duplicate policy make sure one organisation never has two.
func (s *server) startOnboarding(ctx context.Context, o store.Org) error {
	return s.startOnboardingRun(ctx, o, false)
}

// startReconnect starts the organisation's Onboarding again after its
// tenant was revoked or disconnected. The ID is the same; allow-duplicate
// lets it follow the closed first run, and a run still open is refused by
// Temporal all the same (errAlreadyStarted), so two never run at once.
func (s *server) startReconnect(ctx context.Context, o store.Org) error {
	return s.startOnboardingRun(ctx, o, true)
}

func (s *server) startOnboardingRun(ctx context.Context, o store.Org, reconnect bool) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()

	policy := enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	stage := workflows.StageAwaitingApproval
	if reconnect {
		policy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		stage = workflows.StageAwaitingConsent
	}
	opts := client.StartWorkflowOptions{
		ID:                                       workflows.OnboardingID(o.ID),
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    policy,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			orgKey.ValueSet(o.ID),
			stageKey.ValueSet(string(stage)),
		),
	}
	in := workflows.OnboardingInput{OrgID: o.ID, OrgName: o.Name, RegisteredAt: o.CreatedAt,
		Reconnect: reconnect}

	_, err := s.d.Temporal.ExecuteWorkflow(ctx, opts, workflows.OnboardingWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return errAlreadyStarted
	}
	if err != nil {
		return fmt.Errorf("start onboarding of %s: %w", o.ID, err)
	}
	return nil
}

// onboardingRunning reports whether the organisation's newest Onboarding
// run is still open. A workflow Temporal no longer knows has ended.
func (s *server) onboardingRunning(ctx context.Context, orgID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()

	resp, err := s.d.Temporal.DescribeWorkflowExecution(ctx, workflows.OnboardingID(orgID), "")
	var missing *serviceerror.NotFound
	if errors.As(err, &missing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe onboarding of %s: %w", orgID, err)
	}
	status := resp.GetWorkflowExecutionInfo().GetStatus()
	return status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// onboardingStatus asks the organisation's workflow where it stands. When
// the workflow cannot answer (Temporal unreachable, or the workflow closed
// and its history gone), the stage mirrored into the store stands in and
// live is false, so the page can say it may be behind.
func (s *server) onboardingStatus(ctx context.Context, o store.Org) (
	st workflows.OnboardingStatus, live bool) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()

	v, err := s.d.Temporal.QueryWorkflow(ctx, workflows.OnboardingID(o.ID), "",
		workflows.QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	if err == nil && st.Stage != "" {
		return st, true
	}

	var missing *serviceerror.NotFound
	if errors.As(err, &missing) && (o.Stage == "" ||
		workflows.Stage(o.Stage) == workflows.StageAwaitingApproval) {
		// The registration was stored but its workflow never started (the
		// cluster was down at that moment): start it now, once.
		if err := s.startOnboarding(ctx, o); err != nil && !errors.Is(err, errAlreadyStarted) {
			s.log.Warn("restart missing onboarding", zap.String("org", o.ID), zap.Error(err))
		}
	} else if err != nil {
		s.log.Warn("query onboarding status", zap.String("org", o.ID), zap.Error(err))
	}

	stage := workflows.Stage(o.Stage)
	if stage == "" {
		stage = workflows.StageAwaitingApproval
	}
	return workflows.OnboardingStatus{
		OrgID:        o.ID,
		Stage:        stage,
		StageSince:   o.StageSince,
		RegisteredAt: o.CreatedAt,
		LastError:    o.LastError,
	}, false
}

// presenceStatus asks a tenant's PresenceSync workflow how it stands.
func (s *server) presenceStatus(ctx context.Context, tenantID string) (
	workflows.PresenceSyncStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()

	var st workflows.PresenceSyncStatus
	v, err := s.d.Temporal.QueryWorkflow(ctx, workflows.PresenceSyncID(tenantID), "",
		workflows.QueryStatus)
	if err != nil {
		return st, fmt.Errorf("query presence sync of %s: %w", tenantID, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode presence sync status of %s: %w", tenantID, err)
	}
	return st, nil
}

// signal sends a signal with the page's timeout.
func (s *server) signal(ctx context.Context, workflowID, name string, arg any) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()

	if err := s.d.Temporal.SignalWorkflow(ctx, workflowID, "", name, arg); err != nil {
		return fmt.Errorf("signal %s to %s: %w", name, workflowID, err)
	}
	return nil
}

// audit records who did what; a failure is logged, never shown, because
// the action itself already happened.
func (s *server) audit(ctx context.Context, actor, orgID, action, detail string) {
	err := s.d.Store.AddAudit(ctx, store.Audit{At: s.now(), Actor: actor, OrgID: orgID,
		Action: action, Detail: detail})
	if err != nil {
		s.log.Warn("write audit entry", zap.String("org", orgID), zap.String("action", action),
			zap.Error(err))
	}
}
