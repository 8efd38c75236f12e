package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/workflows"
)

func TestStaffLogin(t *testing.T) {
	e := newEnv(t)
	e.staff("sami@setera.example")

	b := e.browser()
	wantText(t, b.get("/staff/login"), "Staff log in", "onesync staff add")
	a := b.post("/staff/login", "/staff/login", url.Values{"email": {"sami@setera.example"},
		"password": {"not the password"}})
	wantStatus(t, a, http.StatusUnauthorized)
	wantText(t, a, "The email address or the password is wrong")

	// An admin session does not open the staff pages.
	admin, _ := e.register("Acme Oy", "aino@acme.example")
	if a := admin.get("/staff"); a.Status != http.StatusSeeOther || a.Location != "/staff/login" {
		t.Errorf("an admin reaches the staff pages: %d %q", a.Status, a.Location)
	}
	// An admin's credentials do not log in as staff.
	a = b.post("/staff/login", "/staff/login", url.Values{"email": {"aino@acme.example"},
		"password": {"correct horse battery"}})
	wantStatus(t, a, http.StatusUnauthorized)
}

func TestStaffReject(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	staff := e.staff("sami@setera.example")

	// A rejection needs a note; the note typed is kept with the message.
	a := staff.post("/staff", "/staff/orgs/"+org+"/reject", url.Values{"note": {""}})
	wantStatus(t, a, http.StatusUnprocessableEntity)
	wantText(t, a, "Write a note: the organisation's admin reads it.")

	a = staff.post("/staff", "/staff/orgs/"+org+"/reject",
		url.Values{"note": {strings.Repeat("n", maxNote+1)}})
	wantStatus(t, a, http.StatusUnprocessableEntity)
	wantText(t, a, "The note is too long")
	if !strings.Contains(a.Body, strings.Repeat("n", maxNote+1)+"</textarea>") {
		t.Error("the typed note was not kept")
	}
	if n := len(e.signalsNamed(workflows.SignalReject)); n != 0 {
		t.Fatalf("%d reject signals for invalid notes", n)
	}

	a = staff.post("/staff", "/staff/orgs/"+org+"/reject",
		url.Values{"note": {"No OneCloud contract found"}})
	wantStatus(t, a, http.StatusSeeOther)
	wantText(t, staff.get(a.Location), "Rejected Acme Oy.")
	sigs := e.signalsNamed(workflows.SignalReject)
	if len(sigs) != 1 || sigs[0].Arg != (workflows.RejectSignal{Staff: "sami@setera.example",
		Note: "No OneCloud contract found"}) {
		t.Fatalf("reject signals %+v", sigs)
	}

	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageRejected,
		DecisionNote: "No OneCloud contract found"})
	wantText(t, admin.get("/orgs/"+org), "Setera did not approve this registration",
		"No OneCloud contract found", "contact Setera support")

	staffHome := staff.get("/staff")
	wantText(t, staffHome, "Waiting for approval (0)", "No registration waits", "rejected")

	wantStatus(t, staff.post("/staff", "/staff/orgs/no-such-org/approve", url.Values{}),
		http.StatusNotFound)
}

func TestStaffSignalFailureShown(t *testing.T) {
	e := newEnv(t)
	_, org := e.register("Acme Oy", "aino@acme.example")
	staff := e.staff("sami@setera.example")
	e.mu.Lock()
	delete(e.statuses, workflows.OnboardingID(org)) // the workflow is gone
	e.mu.Unlock()

	a := staff.post("/staff", "/staff/orgs/"+org+"/approve", url.Values{})
	wantStatus(t, a, http.StatusServiceUnavailable)
	wantText(t, a, "The decision was not sent", "Check it in the Temporal UI")
}

func TestStaffOrganisation(t *testing.T) {
	e := newEnv(t)
	_, org := e.register("Acme Oy", "aino@acme.example")
	staff := e.staff("sami@setera.example")

	page := staff.get("/staff/orgs/" + org)
	wantStatus(t, page, http.StatusOK)
	wantText(t, page, "Acme Oy", "acme-oy", "waiting for approval",
		"No Microsoft tenant is connected yet", "registered")
	a := staff.post("/staff/orgs/"+org, "/staff/orgs/"+org+"/sync/pause", url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "No Teams tenant is connected")

	ctx := context.Background()
	if err := e.db.BindTenant(ctx, tenantA, org, e.clock()); err != nil {
		t.Fatal(err)
	}
	e.setSyncStatus(tenantA, workflows.PresenceSyncStatus{TenantID: tenantA,
		State: workflows.SyncThrottled, Since: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
		LastError: "Graph answered 429", Linked: 12})
	page = staff.get("/staff/orgs/" + org)
	wantText(t, page, tenantA, "active", "throttled", "Graph answered 429",
		"Open the presence sync in the Temporal UI", "Pause the sync", "Disconnect",
		"none finished yet")
	if strings.Contains(page.Body, "Resume the sync") {
		t.Error("a running sync is offered Resume as well as Pause")
	}

	for _, c := range []struct{ action, signal string }{
		{"pause", workflows.SignalPause}, {"resume", workflows.SignalResume},
		{"resync-users", workflows.SignalResyncUsers},
	} {
		a := staff.post("/staff/orgs/"+org, "/staff/orgs/"+org+"/sync/"+c.action, url.Values{})
		wantStatus(t, a, http.StatusSeeOther)
		sigs := e.signalsNamed(c.signal)
		if len(sigs) != 1 || sigs[0].WorkflowID != workflows.PresenceSyncID(tenantA) {
			t.Errorf("%s: signals %+v", c.action, sigs)
		}
	}

	a = staff.post("/staff/orgs/"+org, "/staff/orgs/"+org+"/sync/disconnect", url.Values{})
	wantStatus(t, a, http.StatusUnprocessableEntity)
	wantText(t, a, "Tick the box to confirm")
	if n := len(e.signalsNamed(workflows.SignalDisconnect)); n != 0 {
		t.Fatalf("disconnect sent without confirmation")
	}
	a = staff.post("/staff/orgs/"+org, "/staff/orgs/"+org+"/sync/disconnect",
		url.Values{"confirm": {"yes"}})
	wantStatus(t, a, http.StatusSeeOther)
	wantText(t, staff.get(a.Location), "Asked the presence sync of Acme Oy to disconnect")
	if n := len(e.signalsNamed(workflows.SignalDisconnect)); n != 1 {
		t.Errorf("%d disconnect signals, want 1", n)
	}

	wantStatus(t, staff.post("/staff/orgs/"+org, "/staff/orgs/"+org+"/sync/terminate",
		url.Values{}), http.StatusNotFound)
}

// Two registrations with the same OneCloud customer id: staff see the
// duplicate on the pending card before they approve either.
func TestStaffSeeASharedOneCloudCustomerID(t *testing.T) {
	e := newEnv(t)
	e.register("Acme Oy", "aino@acme.example")
	b := e.browser()
	v := registration("Acme Group", "eero@acme.example")
	v.Set("pbx_org", "ACME-oy")
	if a := b.post("/register", "/register", v); a.Status != http.StatusSeeOther {
		t.Fatalf("second registration: %d\n%s", a.Status, a.Body)
	}
	e.register("Beta Oy", "bo@beta.example")

	home := e.staff("sami@setera.example").get("/staff")
	wantText(t, home, "is also used by Acme Group", "is also used by Acme Oy")
	if strings.Count(home.Body, "is also used by") != 2 {
		t.Errorf("the duplicate is flagged %d times, want on the two Acme cards only",
			strings.Count(home.Body, "is also used by"))
	}
}
