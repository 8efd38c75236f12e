package activities

import (
	"context"
	"testing"

	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// C12 with C15: a window pushed busy and the worker died before the store
// saved it, then the sync ended. The store says never pushed (101) and
// available (102), the PBX holds both busy; the release must still free
// both lamps.
func TestCasesReleaseFreesLinesTheStoreDidNotSeePushed(t *testing.T) {
	db := openStore(t, true)
	link(t, db,
		store.Link{UserID: "u1", Extension: "101"},
		store.Link{UserID: "u2", Extension: "102"},
	)
	ctx := context.Background()
	if err := db.SaveStates(ctx, testTenant, []store.StateUpdate{
		{UserID: "u2", LineState: "available", Seq: 3},
	}); err != nil {
		t.Fatal(err)
	}
	pb := newFakePBX()
	pb.state["101"], pb.seq["101"] = presence.Busy, 1
	pb.state["102"], pb.seq["102"] = presence.Busy, 4

	acts := &Activities{Store: db, PBX: pb}
	env, cancel := activityEnv(acts)
	defer cancel()
	if _, err := env.ExecuteActivity(acts.ReleaseLines, workflows.ReleaseLinesInput{
		OrgID: testOrg, TenantID: testTenant, Reason: "disconnected",
	}); err != nil {
		t.Fatalf("ReleaseLines: %v", err)
	}
	for _, ext := range []string{"101", "102"} {
		if pb.state[ext] != presence.Available {
			t.Errorf("lamp %s stays %s after the sync ended", ext, pb.state[ext])
		}
	}
}
