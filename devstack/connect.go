package devstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// connectedBy names, in the approval note, what connected an organisation
// without the portal.
const connectedBy = "devstack"

// Connect takes an organisation through the onboarding without the
// browser, for tests and the benchmark: it registers the organisation
// orgID in the store, starts its Onboarding workflow, approves it as
// staff, grants admin consent in the Graph simulator, signals the consent
// and waits until the users are imported and the tenant's presence sync
// answers its status query. pbxOrg is the organisation's id in the
// OneCloud simulator. ctx bounds the whole wait.
func (s *Stack) Connect(ctx context.Context, orgID, name, tenantID, pbxOrg string) (
	workflows.ImportResult, error) {

	now := time.Now().UTC()
	err := s.Store.CreateOrgWithAdmin(ctx,
		store.Org{ID: orgID, Name: name, PBXOrg: pbxOrg,
			Stage: string(workflows.StageAwaitingApproval), StageSince: now, CreatedAt: now},
		store.Admin{ID: "admin-" + orgID, OrgID: orgID, Name: "Admin of " + name,
			Email: "admin@" + orgID + ".example", PasswordHash: "not-a-login", CreatedAt: now})
	if err != nil {
		return workflows.ImportResult{}, fmt.Errorf("register %s: %w", name, err)
	}

	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflows.OnboardingID(orgID),
		TaskQueue:             workflows.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.OnboardingWorkflow, workflows.OnboardingInput{
		OrgID: orgID, OrgName: name, RegisteredAt: now,
	})
	if err != nil {
		return workflows.ImportResult{}, fmt.Errorf("start onboarding of %s: %w", name, err)
	}
	err = s.Client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.SignalApprove,
		workflows.ApproveSignal{Staff: s.StaffEmail, Note: "connected by " + connectedBy})
	if err != nil {
		return workflows.ImportResult{}, fmt.Errorf("approve %s: %w", name, err)
	}
	if err := s.Graph.Consent(tenantID); err != nil {
		return workflows.ImportResult{}, fmt.Errorf("consent of %s in the Graph simulator: %w",
			tenantID, err)
	}
	err = s.Client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(),
		workflows.SignalConsentGranted,
		workflows.ConsentGrantedSignal{TenantID: tenantID, By: "admin-" + orgID})
	if err != nil {
		return workflows.ImportResult{}, fmt.Errorf("signal consent of %s: %w", name, err)
	}

	var res workflows.ImportResult
	if err := run.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("onboarding of %s: %w", name, err)
	}
	for {
		var st workflows.PresenceSyncStatus
		v, err := s.Client.QueryWorkflow(ctx, workflows.PresenceSyncID(tenantID), "",
			workflows.QueryStatus)
		if err == nil {
			err = v.Get(&st)
		}
		if err == nil {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("presence sync of %s never answered: %w", tenantID,
				errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
