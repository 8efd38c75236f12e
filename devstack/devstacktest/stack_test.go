package devstacktest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
)

// The demo tenant connects and a call of one user turns that user's lamp
// busy in the OneCloud simulator: the smallest proof that the stack's
// parts are wired to each other.
func TestConnectedDemoTenantLightsTheLamp(t *testing.T) {
	s := devstacktest.Start(t, devstack.Options{})
	org := devstacktest.Connect(t, s, "Demo Oy", graphsim.DemoTenantID, onecloudsim.DemoOrg)
	if org.Import.Activated != 10 {
		t.Fatalf("%d users activated, want 10", org.Import.Activated)
	}

	aino := graphsim.DemoUsers()[0]
	if _, err := s.Graph.SetPresence(graphsim.DemoTenantID, aino.ID, "Busy", "InACall"); err != nil {
		t.Fatal(err)
	}
	devstacktest.Eventually(t, 30*time.Second, "extension 1001 busy", func() error {
		if st, _ := s.OneCloud.LineState(onecloudsim.DemoOrg, "1001"); st != presence.Busy {
			return fmt.Errorf("line state %q", st)
		}
		return nil
	})

	// The push shows on /metrics beside the Temporal SDK's own metrics.
	resp, err := http.Get(s.PortalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`onesync_presence_changes_pushed_total{state="busy"} 1`,
		"onesync_tenants_syncing 1",
		"temporal_activity_execution_latency_seconds",
		"temporal_workflow_task_queue_poll_succeed",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
