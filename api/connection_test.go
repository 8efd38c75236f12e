package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// syncingOrg registers an organisation whose onboarding has reached
// syncing with tenantA, and whose presence sync answers st.
func syncingOrg(t *testing.T, e *env, st workflows.SyncState) (*browser, string) {
	t.Helper()
	admin, org := e.register("Acme Oy", "aino@acme.example")
	if err := e.db.BindTenant(context.Background(), tenantA, org, e.clock()); err != nil {
		t.Fatal(err)
	}
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageSyncing,
		TenantID: tenantA, Import: &workflows.ImportResult{Activated: 12}})
	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA, State: st,
		Since: e.clock(), Linked: 12})
	return admin, org
}

func (e *env) startCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.started)
}

func TestReconnectAfterRevocation(t *testing.T) {
	e := newEnv(t)
	admin, org := syncingOrg(t, e, workflows.SyncRunning)
	teams := "/orgs/" + org + "/settings/teams"
	reconnect := teams + "/reconnect"

	// While Teams is connected there is nothing to connect again.
	page := admin.get(teams)
	wantText(t, page, "12 users have been activated", "Pause or disconnect on the dashboard")
	if strings.Contains(page.Body, "Connect Teams again") {
		t.Error("reconnect offered while the tenant is active")
	}
	a := admin.post(teams, reconnect, url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "Teams cannot be connected again now", "Teams is connected and syncing")

	// The customer removes the app in Entra ID: the sync ends, revoked.
	revokedAt := e.clock().Add(time.Hour)
	err := e.db.SetTenantState(context.Background(), tenantA, store.TenantRevoked,
		"SyncPresence: AADSTS7000229: the app has no service principal", revokedAt)
	if err != nil {
		t.Fatal(err)
	}
	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA,
		State: workflows.SyncRevoked, Since: revokedAt})

	// The first onboarding still runs (it has not ended yet): refused.
	page = admin.get(teams)
	wantText(t, page, "Teams is disconnected: Teams access was removed in Entra ID on "+
		"2 Mar 2026 10:00 UTC", "Connecting Teams again has already started")
	wantStatus(t, admin.post(teams, reconnect, url.Values{}), http.StatusConflict)

	e.closeWorkflow(workflows.OnboardingID(org))
	dash := admin.get("/orgs/" + org)
	wantText(t, dash, "Teams access was removed in Entra ID on 2 Mar 2026 10:00 UTC; every "+
		"line was set back to available. Connect again under Settings > Teams.",
		"Who acts now: You")
	if strings.Contains(dash.Body, "Pause the sync") ||
		strings.Contains(dash.Body, "presence is syncing") {
		t.Error("the dashboard offers sync controls for a revoked tenant")
	}
	if !strings.Contains(dash.Body, `class="step failed"`) {
		t.Error("the stepper does not mark the sync as stopped")
	}

	page = admin.get(teams)
	wantText(t, page, "Teams is disconnected: Teams access was removed in Entra ID",
		"every line was set back to available", "AADSTS7000229", "Connect Teams again")
	if e.startCount() != 1 {
		t.Fatalf("%d starts before the button was pressed", e.startCount())
	}

	wantStatus(t, admin.post("", reconnect, url.Values{}), http.StatusForbidden)
	if e.startCount() != 1 {
		t.Fatal("a reconnect without a CSRF token started a workflow")
	}

	a = admin.post(teams, reconnect, url.Values{})
	wantStatus(t, a, http.StatusSeeOther)
	if a.Location != teams+"?done=reconnect" {
		t.Errorf("reconnect goes to %q", a.Location)
	}
	if e.startCount() != 2 {
		t.Fatalf("%d starts, want the registration's and the reconnect's", e.startCount())
	}
	first, again := e.started[0], e.started[1]
	if first.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
		t.Errorf("registration policy %v, want reject duplicate (C16)",
			first.WorkflowIDReusePolicy)
	}
	if again.ID != workflows.OnboardingID(org) || again.TaskQueue != workflows.TaskQueue ||
		again.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE ||
		!again.WorkflowExecutionErrorWhenAlreadyStarted {
		t.Errorf("reconnect start options %+v", again)
	}
	if v, _ := again.TypedSearchAttributes.GetKeyword(stageKey); v != "awaiting-consent" {
		t.Errorf("reconnect stage attribute %q", v)
	}
	if in := e.inputs[1]; !in.Reconnect || in.OrgID != org || e.inputs[0].Reconnect {
		t.Errorf("inputs %+v", e.inputs)
	}

	page = admin.get(a.Location)
	wantText(t, page, "Ready to connect Teams again", "Click here to sign and add users",
		"Teams is disconnected: Teams access was removed")
	if strings.Contains(page.Body, "Connect Teams again</button>") {
		t.Error("the reconnect button stays while the new onboarding waits for consent")
	}

	// Pressed twice (a second tab): the running onboarding is kept.
	a = admin.post(teams, reconnect, url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "already started")
	if e.startCount() != 2 {
		t.Errorf("%d starts after a second press", e.startCount())
	}
	audit, err := e.db.AuditByOrg(context.Background(), org, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Action != "reconnect-started" {
		t.Errorf("audit %+v", audit)
	}
}

func TestReconnectAfterDisconnect(t *testing.T) {
	e := newEnv(t)
	admin, org := syncingOrg(t, e, workflows.SyncRunning)
	err := e.db.SetTenantState(context.Background(), tenantA, store.TenantDisconnected,
		"disconnected on request", e.clock())
	if err != nil {
		t.Fatal(err)
	}
	e.closeWorkflow(workflows.OnboardingID(org))
	e.closeWorkflow(workflows.PresenceSyncID(tenantA))

	teams := "/orgs/" + org + "/settings/teams"
	wantText(t, admin.get(teams), "Teams is disconnected: disconnected on 2 Mar 2026 09:00 UTC",
		"Connect Teams again")
	wantText(t, admin.get("/orgs/"+org), "Teams was disconnected on 2 Mar 2026 09:00 UTC; "+
		"every line was set back to available. Connect again under Settings > Teams.")

	wantStatus(t, admin.post(teams, teams+"/reconnect", url.Values{}), http.StatusSeeOther)
	if e.startCount() != 2 || !e.inputs[1].Reconnect {
		t.Errorf("starts %d, inputs %+v", e.startCount(), e.inputs)
	}
}

func TestReconnectNeverConnected(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageAwaitingConsent})
	teams := "/orgs/" + org + "/settings/teams"
	a := admin.post(teams, teams+"/reconnect", url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "Teams was never connected")
	if e.startCount() != 1 {
		t.Errorf("%d starts", e.startCount())
	}
}

func TestAdminSyncControls(t *testing.T) {
	e := newEnv(t)
	admin, org := syncingOrg(t, e, workflows.SyncThrottled)
	dashPath := "/orgs/" + org
	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA,
		State: workflows.SyncThrottled, Since: e.clock(), Linked: 12,
		LastError: "SyncPresence: Graph answered 429"})

	dash := admin.get(dashPath)
	wantText(t, dash, "12 users activated: presence is syncing", "Presence sync", "throttled",
		"Throttled: Microsoft asked OneSync to slow down", "SyncPresence: Graph answered 429",
		"Pause the sync", "Disconnect Teams")
	if strings.Contains(dash.Body, "Resume the sync") {
		t.Error("resume offered while the sync runs")
	}

	a := admin.post(dashPath, dashPath+"/sync/pause", url.Values{})
	wantStatus(t, a, http.StatusSeeOther)
	sigs := e.signalsNamed(workflows.SignalPause)
	if len(sigs) != 1 || sigs[0].WorkflowID != "presence-sync:"+tenantA {
		t.Fatalf("pause signals %+v", sigs)
	}
	wantText(t, admin.get(a.Location), "Asked the presence sync to pause")
	audit, err := e.db.AuditByOrg(context.Background(), org, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Action != "sync-pause" ||
		!strings.HasPrefix(audit[0].Actor, "admin:") {
		t.Errorf("audit %+v", audit)
	}

	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA,
		State: workflows.SyncPaused, Since: e.clock()})
	dash = admin.get(dashPath)
	wantText(t, dash, "Paused: OneSync leaves every line as it is", "Resume the sync")
	if strings.Contains(dash.Body, "Pause the sync") {
		t.Error("pause offered while the sync is paused")
	}
	wantStatus(t, admin.post(dashPath, dashPath+"/sync/resume", url.Values{}), http.StatusSeeOther)
	if n := len(e.signalsNamed(workflows.SignalResume)); n != 1 {
		t.Errorf("%d resume signals", n)
	}

	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA,
		State: workflows.SyncFailing, Since: e.clock(),
		LastError: "SyncPresence: permission missing"})
	wantText(t, admin.get(dashPath), "Failing: the last attempts did not work",
		"SyncPresence: permission missing")

	wantStatus(t, admin.post("", dashPath+"/sync/pause", url.Values{}), http.StatusForbidden)
	wantStatus(t, admin.post(dashPath, dashPath+"/sync/resync-users", url.Values{}),
		http.StatusNotFound)
	if n := len(e.signalsNamed(workflows.SignalPause)) +
		len(e.signalsNamed(workflows.SignalResyncUsers)); n != 1 {
		t.Errorf("%d pause and re-import signals, want the one pause", n)
	}

	a = admin.post(dashPath, dashPath+"/sync/disconnect", url.Values{})
	wantStatus(t, a, http.StatusUnprocessableEntity)
	wantText(t, a, "Tick the box to confirm", "Presence sync")
	if n := len(e.signalsNamed(workflows.SignalDisconnect)); n != 0 {
		t.Fatal("disconnect sent without confirmation")
	}
	a = admin.post(dashPath, dashPath+"/sync/disconnect", url.Values{"confirm": {"yes"}})
	wantStatus(t, a, http.StatusSeeOther)
	wantText(t, admin.get(a.Location), "Asked the presence sync to disconnect")
	if d := e.signalsNamed(workflows.SignalDisconnect); len(d) != 1 ||
		d[0].WorkflowID != workflows.PresenceSyncID(tenantA) {
		t.Errorf("disconnect signals %+v", d)
	}

	// Once the tenant is marked disconnected, nothing is left to control.
	err = e.db.SetTenantState(context.Background(), tenantA, store.TenantDisconnected,
		"disconnected on request", e.clock())
	if err != nil {
		t.Fatal(err)
	}
	a = admin.post(dashPath, dashPath+"/sync/pause", url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "The presence sync has ended")
	if n := len(e.signalsNamed(workflows.SignalPause)); n != 1 {
		t.Errorf("%d pause signals after the sync ended", n)
	}
}

// TestSyncRevokedBeforeStoreKnows shows the revocation as soon as the sync
// reports it, even while the store still holds the tenant as active.
func TestSyncRevokedBeforeStoreKnows(t *testing.T) {
	e := newEnv(t)
	admin, org := syncingOrg(t, e, workflows.SyncRevoked)
	dash := admin.get("/orgs/" + org)
	wantText(t, dash, "Teams access was removed in Entra ID on 2 Mar 2026 09:00 UTC")
	if strings.Contains(dash.Body, "Pause the sync") {
		t.Error("sync controls offered for a revoked sync")
	}
}

func TestConnectionOfAnotherOrganisation(t *testing.T) {
	e := newEnv(t, csvDeployment)
	admin, _ := e.register("Beta Ab", "bo@beta.example")
	_, other := syncingOrg(t, e, workflows.SyncRunning)
	err := e.db.SetTenantState(context.Background(), tenantA, store.TenantRevoked, "gone",
		e.clock())
	if err != nil {
		t.Fatal(err)
	}
	e.closeWorkflow(workflows.OnboardingID(other))
	// The admin's own dashboard gives the forms their CSRF token.
	own := admin.get("/")
	wantStatus(t, own, http.StatusSeeOther)
	for _, path := range []string{"/sync/pause", "/sync/disconnect",
		"/settings/teams/reconnect"} {
		a := admin.post(own.Location, "/orgs/"+other+path, url.Values{"confirm": {"yes"}})
		wantStatus(t, a, http.StatusNotFound)
	}
	wantStatus(t, admin.get("/orgs/"+other+"/settings/extensions"), http.StatusNotFound)
	up := admin.upload(own.Location, "/orgs/"+other+"/settings/extensions", "x.csv",
		[]byte("carl@acme.example,203\n"))
	wantStatus(t, up, http.StatusNotFound)

	if len(e.signals) != 0 {
		t.Errorf("signals sent for another organisation: %+v", e.signals)
	}
	if e.startCount() != 2 {
		t.Errorf("%d starts, want the two registrations", e.startCount())
	}
	wantStored(t, e, other)
}
