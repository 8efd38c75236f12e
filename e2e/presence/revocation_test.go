package presencee2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// C7: the customer deletes the enterprise app while two users are busy.
// Within one window every extension of the tenant is available again, the
// tenant is revoked in the store and on the staff page, the sync's status
// says revoked and its workflow has completed, and nothing keeps asking
// the token endpoint.
func TestDeletedAppEndsTheSyncWithinOneWindow(t *testing.T) {
	t.Parallel()
	s, org := startDemo(t, window, nil)
	const tenant, pbxOrg = graphsim.DemoTenantID, onecloudsim.DemoOrg
	users := graphsim.DemoUsers()

	propagate(t, s, tenant, users[0].ID, pbxOrg, demoExt[0], "call-start", presence.Busy)
	propagate(t, s, tenant, users[1].ID, pbxOrg, demoExt[1], "meeting-start", presence.Busy)

	deleted := time.Now()
	if err := s.Graph.DeleteApp(tenant); err != nil {
		t.Fatal(err)
	}
	devstacktest.Eventually(t, time.Minute, "every line available", func() error {
		for _, ext := range demoExt {
			if st, _ := s.OneCloud.LineState(pbxOrg, ext); st != presence.Available {
				return fmt.Errorf("extension %s is %q", ext, st)
			}
		}
		return nil
	})
	released := time.Since(deleted)
	t.Logf("every line available %s after the app was deleted (window %s)",
		released.Round(time.Millisecond), window)
	// One window, plus the release itself on a loaded machine.
	if limit := window + 3*time.Second; released > limit {
		t.Errorf("lines released %s after the deletion, want within %s", released, limit)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	devstacktest.Eventually(t, 30*time.Second, "tenant revoked in the store", func() error {
		tn, err := s.Store.Tenant(ctx, tenant)
		if err != nil {
			return err
		}
		if tn.State != store.TenantRevoked {
			return fmt.Errorf("tenant state %q", tn.State)
		}
		return nil
	})
	devstacktest.Eventually(t, 30*time.Second, "the sync's workflow completed", func() error {
		d, err := s.Client.DescribeWorkflowExecution(ctx, workflows.PresenceSyncID(tenant), "")
		if err != nil {
			return err
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st !=
			enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	st := status(t, s, tenant)
	if st.State != workflows.SyncRevoked || !strings.Contains(st.LastError, "AADSTS7000229") {
		t.Errorf("status %s (%q), want revoked with AADSTS7000229", st.State, st.LastError)
	}

	page := staffPage(t, s, "/staff/orgs/"+org.ID)
	if !strings.Contains(page, `<span class="stage revoked">revoked</span>`) {
		t.Errorf("the staff organisation page does not show the tenant revoked:\n%s", page)
	}

	// No retry loop: nothing reaches Entra or Graph for this tenant any more.
	before, err := s.Graph.RequestCounts(tenant)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3*interval + 2*time.Second)
	after, _ := s.Graph.RequestCounts(tenant)
	t.Logf("Graph requests of the revoked tenant: %+v", after)
	if after.Token != before.Token || after.Presences != before.Presences {
		t.Errorf("requests went on after revocation: tokens %d → %d, presence reads %d → %d",
			before.Token, after.Token, before.Presences, after.Presences)
	}
	// Each of the two lines the app left busy was freed by one applied push.
	for _, ext := range demoExt[:2] {
		if n := s.OneCloud.Pushes(pbxOrg, ext); n != 3 {
			t.Errorf("extension %s: %d applied pushes, want 3 (first sync, busy, released)",
				ext, n)
		}
	}
}
