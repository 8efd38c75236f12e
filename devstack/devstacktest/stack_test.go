package devstacktest_test

import (
	"fmt"
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
}
