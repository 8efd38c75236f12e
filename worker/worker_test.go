package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/devstack/temporaldev/temporaldevtest"
	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/worker"
	"github.com/setera/onesync/workflows"
)

// TestRegistersOnboardingUnderItsName starts an Onboarding by its type name
// on task queue onesync, as the portal does, and checks that the worker
// built by New runs it: it answers the status query and sets the search
// attribute staff filter by.
func TestRegistersOnboardingUnderItsName(t *testing.T) {
	srv := temporaldevtest.Start(t, temporaldev.Options{DisableUI: true})
	c := temporaldevtest.Client(t, srv)

	w := worker.New(c, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := workflows.OnboardingID("org-42")
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
	}, workflows.OnboardingWorkflow, workflows.OnboardingInput{
		OrgID: "org-42", OrgName: "Example Oy", RegisteredAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatalf("start onboarding: %v", err)
	}

	var status workflows.OnboardingStatus
	testutil.Eventually(t, 30*time.Second, "status query answered", func() error {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		if err != nil {
			return err
		}
		return v.Get(&status)
	})
	if status.OrgID != "org-42" || status.Stage != workflows.StageAwaitingApproval {
		t.Fatalf("status %+v, want org-42 awaiting approval", status)
	}

	query := fmt.Sprintf("%s = 'org-42'", workflows.SearchAttrOrg)
	testutil.Eventually(t, 30*time.Second, "onboarding found by organisation", func() error {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: srv.Namespace(), Query: query,
		})
		if err != nil {
			return err
		}
		if len(resp.GetExecutions()) != 1 {
			return fmt.Errorf("query %q found %d executions", query, len(resp.GetExecutions()))
		}
		return nil
	})
}

func TestDialRejectsHalfACertificate(t *testing.T) {
	_, err := worker.Dial(context.Background(), worker.ClientConfig{
		Address: "127.0.0.1:7233", CertFile: "client.pem",
	})
	if err == nil {
		t.Fatal("Dial accepted a certificate without its key")
	}
}
