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

// After a restart of the stack with the same data folder, the OneCloud
// simulator shows the lamps the sync had pushed before, as a real PBX
// would, and the sync carries on from them.
func TestRestartKeepsTheLamps(t *testing.T) {
	dir := t.TempDir()
	first := devstacktest.Start(t, devstack.Options{DataDir: dir})
	devstacktest.Connect(t, first, "Demo Oy", graphsim.DemoTenantID, onecloudsim.DemoOrg)
	aino := graphsim.DemoUsers()[0]
	if _, err := first.Graph.SetPresence(graphsim.DemoTenantID, aino.ID, "Busy", "InACall"); err != nil {
		t.Fatal(err)
	}
	devstacktest.Eventually(t, 30*time.Second, "extension 1001 busy", func() error {
		if st, _ := first.OneCloud.LineState(onecloudsim.DemoOrg, "1001"); st != presence.Busy {
			return fmt.Errorf("line state %q", st)
		}
		return nil
	})
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	// The Graph simulator forgets the call across the restart, so 1001
	// goes free with one push; every other lamp is restored as it was and
	// needs none.
	second := devstacktest.Start(t, devstack.Options{DataDir: dir})
	devstacktest.Eventually(t, 30*time.Second, "extension 1001 free", func() error {
		if st, _ := second.OneCloud.LineState(onecloudsim.DemoOrg, "1001"); st != presence.Available {
			return fmt.Errorf("line state %q", st)
		}
		return nil
	})
	if n := second.OneCloud.Pushes(onecloudsim.DemoOrg, "1001"); n != 1 {
		t.Errorf("1001 received %d pushes after the restart, want 1", n)
	}
	if st, _ := second.OneCloud.LineState(onecloudsim.DemoOrg, "1002"); st != presence.Available {
		t.Errorf("after the restart lamp 1002 is %q, want available as before", st)
	}
	if n := second.OneCloud.Pushes(onecloudsim.DemoOrg, "1002"); n != 0 {
		t.Errorf("1002 received %d pushes after the restart, want none", n)
	}
}
