package workflows

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// newReplayer registers both workflows under their contract names, as the
// worker does.
func newReplayer() worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Onboarding, workflow.RegisterOptions{Name: OnboardingWorkflow})
	r.RegisterWorkflowWithOptions(PresenceSync,
		workflow.RegisterOptions{Name: PresenceSyncWorkflow})
	return r
}

// readHistory reads a history exported as JSON.
func readHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	h, err := client.HistoryFromJSON(bytes.NewReader(b), client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	if len(h.GetEvents()) == 0 {
		t.Fatalf("%s holds no event", file)
	}
	return h
}

func workflowType(h *historypb.History) string {
	return h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// TestReplayRecordedHistories replays every workflow history exported as
// JSON under testdata/ (recorded by the onboarding journey in e2e/onboarding
// with ONESYNC_RECORD_HISTORIES=1, or `temporal workflow show --output
// json`) against the current workflow code, so that a change that breaks
// determinism for running workflows fails here first. At least one history
// of each workflow must be there.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatalf("list recorded histories: %v", err)
	}

	replayer := newReplayer()
	covered := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			covered[workflowType(readHistory(t, file))] = true
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
	for _, wf := range []string{OnboardingWorkflow, PresenceSyncWorkflow} {
		if !covered[wf] {
			t.Errorf("no recorded %s history under testdata: record one as "+
				"testdata/README.md says", wf)
		}
	}
}

// TestReplayNoticesAChangedWorkflow is the control of the replay test: the
// recorded onboarding with its first activity renamed no longer matches
// the code, and the replayer must say so.
func TestReplayNoticesAChangedWorkflow(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "onboarding-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded onboarding history under testdata (%v)", err)
	}
	h := readHistory(t, files[0])
	renamed := false
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			a.GetActivityType().Name = "NotAnActivityOfOnboarding"
			renamed = true
			break
		}
	}
	if !renamed {
		t.Fatalf("%s schedules no activity", files[0])
	}
	b, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(t.TempDir(), "changed.json")
	if err := os.WriteFile(changed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The replayer logs the expected panic; this test needs only the error.
	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	if err := newReplayer().ReplayWorkflowHistoryFromJSONFile(quiet, changed); err == nil {
		t.Fatal("a history whose activity differs from the code replayed without an error")
	}
}
