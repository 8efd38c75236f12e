package presencee2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// C12 as the case states it: the worker process is killed (SIGKILL, no
// clean stop) in the middle of a window, right after it pushed a change.
// Temporal notices by the missed heartbeats and hands the window to
// another worker, which resumes from the last heartbeat and the store:
// every lamp ends right, and no state is pushed twice.
func TestKilledWorkerProcessPushesNoStateTwice(t *testing.T) {
	t.Parallel()
	bin := buildOnesync(t)

	dir := t.TempDir()
	secrets := devstack.Options{
		GraphClientSecret: "crash-test-graph-secret", OneCloudAPIKey: "crash-test-key",
		OneCloudSigningSecret: "crash-test-signing-secret",
	}
	logger, _ := observedLogger(t)
	s := devstacktest.Start(t, devstack.Options{DataDir: dir, InMemoryTemporal: true,
		SyncInterval: interval, SyncWindow: window, Logger: logger,
		GraphClientSecret: secrets.GraphClientSecret, OneCloudAPIKey: secrets.OneCloudAPIKey,
		OneCloudSigningSecret: secrets.OneCloudSigningSecret})
	const tenant, pbxOrg = graphsim.DemoTenantID, onecloudsim.DemoOrg
	org := devstacktest.Connect(t, s, "Demo Oy", tenant, pbxOrg)
	if org.Import.Activated != len(demoExt) {
		t.Fatalf("%d demo users activated, want %d", org.Import.Activated, len(demoExt))
	}
	for _, ext := range demoExt {
		waitLine(t, s, pbxOrg, ext, presence.Available, 30*time.Second)
	}
	users := graphsim.DemoUsers()

	// From here on only the worker process serves the task queue.
	s.StopWorker()
	worker := exec.Command(bin, "worker",
		"--temporal-address", s.Temporal.FrontendAddress(),
		"--store", "sqlite:"+filepath.Join(dir, devstack.StoreFile),
		"--graph-client-id", devstack.DevClientID,
		"--graph-authority", s.Graph.URL(), "--graph-base-url", s.Graph.URL()+"/v1.0",
		"--onecloud-url", s.OneCloud.URL(),
		"--sync-interval", interval.String(), "--sync-window", window.String(),
		"--log-level", "warn")
	worker.Env = append(os.Environ(),
		"ONESYNC_GRAPH_CLIENT_SECRET="+secrets.GraphClientSecret,
		"ONESYNC_ONECLOUD_API_KEY="+secrets.OneCloudAPIKey,
		"ONESYNC_ONECLOUD_SIGNING_SECRET="+secrets.OneCloudSigningSecret)
	var stderr strings.Builder
	worker.Stderr = &stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = worker.Process.Kill()
		_ = worker.Wait()
		if t.Failed() {
			t.Logf("worker process stderr:\n%s", stderr.String())
		}
	})

	// The process takes over and pushes a call; it is killed at once.
	propagate(t, s, tenant, users[0].ID, pbxOrg, demoExt[0], "call-start", presence.Busy)
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = worker.Wait()
	killed := time.Now()

	// While no worker runs, another user joins a meeting.
	if _, err := s.Graph.ApplyAction(tenant, users[1].ID, "meeting-start"); err != nil {
		t.Fatal(err)
	}

	if err := s.StartWorker(devstack.Options{SyncInterval: interval,
		SyncWindow: window}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, s, pbxOrg, demoExt[1], presence.Busy,
		workflows.SyncHeartbeatTimeout+time.Minute)
	t.Logf("the meeting reached its lamp %s after the kill",
		time.Since(killed).Round(time.Millisecond))

	// One push at the start for every extension, one for the call and one
	// for the meeting: a replay of the killed worker's push is fine, a
	// second applied push of the same state is not.
	want := map[string]presence.LineState{demoExt[0]: presence.Busy, demoExt[1]: presence.Busy}
	for _, ext := range demoExt {
		pushes, wantPushes := s.OneCloud.Pushes(pbxOrg, ext), 1
		if _, changed := want[ext]; changed {
			wantPushes = 2
		}
		if pushes != wantPushes {
			t.Errorf("extension %s applied %d pushes, want %d", ext, pushes, wantPushes)
		}
		wantState := want[ext]
		if wantState == "" {
			wantState = presence.Available
		}
		if st, _ := s.OneCloud.LineState(pbxOrg, ext); st != wantState {
			t.Errorf("extension %s is %q, want %q", ext, st, wantState)
		}
	}
}

// buildOnesync builds the onesync binary for tests that need a worker in a
// process of its own, which they can kill.
func buildOnesync(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "onesync")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"github.com/setera/onesync/cmd/onesync").CombinedOutput()
	if err != nil {
		t.Fatalf("build onesync: %v\n%s", err, out)
	}
	return bin
}
