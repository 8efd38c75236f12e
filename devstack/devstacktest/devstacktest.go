// Package devstacktest starts the whole OneSync stack for a test, on free
// loopback ports with a throw-away data folder, and connects tenants to it
// the way the onboarding does, so that integration tests, the browser
// journey and the benchmark share one way in.
package devstacktest

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/workflows"
)

// Start runs a stack for t and stops it when t ends. Zero fields of o take
// test defaults: a temporary data folder, Temporal in memory without its
// UI, free ports everywhere, a 1 s polling interval, and t's logger at
// warning level.
func Start(t testing.TB, o devstack.Options) *devstack.Stack {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
		o.InMemoryTemporal = true
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:0"
	}
	if o.GraphAddr == "" {
		o.GraphAddr = "127.0.0.1:0"
	}
	if o.OneCloudAddr == "" {
		o.OneCloudAddr = "127.0.0.1:0"
	}
	if o.TemporalUIPort == 0 {
		o.DisableUI = true
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop the stack: %v", err)
		}
	})
	return s
}

// Org is an organisation connected by Connect.
type Org struct {
	ID       string
	TenantID string
	PBXOrg   string
	Import   workflows.ImportResult
}

// Connect takes an organisation through the onboarding without the
// browser: it registers the organisation in the store, starts its
// Onboarding workflow, approves it as staff, grants admin consent in the
// Graph simulator, signals the consent and waits until the workflow has
// imported the users and started the tenant's presence sync. pbxOrg is
// the organisation's id in the OneCloud simulator.
func Connect(t testing.TB, s *devstack.Stack, name, tenantID, pbxOrg string) Org {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	id := "org-" + strings.ToLower(strings.NewReplacer(" ", "-", ".", "").Replace(name))
	res, err := s.Connect(ctx, id, name, tenantID, pbxOrg)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	return Org{ID: id, TenantID: tenantID, PBXOrg: pbxOrg, Import: res}
}

// SyncStatus queries the tenant's PresenceSync workflow.
func SyncStatus(ctx context.Context, s *devstack.Stack, tenantID string) (
	workflows.PresenceSyncStatus, error) {
	var st workflows.PresenceSyncStatus
	v, err := s.Client.QueryWorkflow(ctx, workflows.PresenceSyncID(tenantID), "",
		workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// WaitSyncing waits until the tenant's presence sync answers its status
// query, which it does from its first workflow task on.
func WaitSyncing(t testing.TB, s *devstack.Stack, tenantID string) {
	t.Helper()
	Eventually(t, time.Minute, "the presence sync of "+tenantID+" answers", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := SyncStatus(ctx, s, tenantID)
		return err
	})
}

// Eventually polls cond until it returns nil or within passes; then the
// test fails with what was awaited and the last error.
var Eventually = testutil.Eventually
