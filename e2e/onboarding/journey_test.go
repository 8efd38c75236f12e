package onboarding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/workflows"
)

// Cookie names of the portal (api/security.go).
const (
	adminCookie = "onesync_admin"
	staffCookie = "onesync_staff"
	csrfCookie  = "onesync_csrf"
)

// importDeadline is how long a page may take to show the import result
// after the consent: the workflow verifies, imports and starts the sync
// on a loaded two-core machine.
const importDeadline = 2 * time.Minute

// laps logs how long each step of a journey took.
type laps struct {
	t     testing.TB
	start time.Time
	last  time.Time
}

func newLaps(t testing.TB) *laps {
	now := time.Now()
	return &laps{t: t, start: now, last: now}
}

func (l *laps) lap(step string) {
	now := time.Now()
	l.t.Logf("timing: %-40s %6.2fs (total %6.2fs)", step, now.Sub(l.last).Seconds(),
		now.Sub(l.start).Seconds())
	l.last = now
}

// admin is a registering administrator and their browser.
type admin struct {
	*browser
	portal   string
	orgID    string
	orgName  string
	email    string
	password string
	// sessions are every admin session cookie value the browser held.
	sessions []string
}

func randomPassword(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random password: %v", err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// registerForm fills the register form of a fresh page and sends it.
func registerForm(b *browser, portal, orgName, pbxOrg, email, password string) *page {
	b.t.Helper()
	form := b.get(portal + "/register")
	wantStatus(b.t, form, http.StatusOK)
	return b.submit(form, "Register", url.Values{
		"org_name":         {orgName},
		"pbx_org":          {pbxOrg},
		"name":             {"Aino Admin"},
		"email":            {email},
		"phone":            {"+358 40 123 4567"},
		"password":         {password},
		"password_confirm": {password},
	})
}

// register registers an organisation over HTTP and returns its admin,
// signed in on the dashboard the registration lands on.
func register(t testing.TB, portal, orgName, pbxOrg, email string) (*admin, *page) {
	t.Helper()
	a := &admin{browser: newBrowser(t, "admin"), portal: portal, orgName: orgName,
		email: email, password: randomPassword(t)}
	dash := registerForm(a.browser, portal, orgName, pbxOrg, email, a.password)
	wantStatus(t, dash, http.StatusOK)
	id, ok := strings.CutPrefix(dash.URL.Path, "/orgs/")
	if !ok || id == "" || strings.Contains(id, "/") {
		t.Fatalf("registration ended on %s, want the dashboard /orgs/<id>:\n%s", dash.URL,
			dash.Text())
	}
	a.orgID = id
	a.sessions = append(a.sessions, a.cookie(portal, adminCookie))
	return a, dash
}

// logOutAndIn logs the admin out and in again at /login, the way back to
// the portal after the registration.
func (a *admin) logOutAndIn(t testing.TB) *page {
	t.Helper()
	out := a.submit(a.get(a.portal+"/orgs/"+a.orgID), "Log out", nil)
	wantStatus(t, out, http.StatusOK)
	if out.URL.Path != "/login" {
		t.Fatalf("log-out ended on %s, want /login", out.URL)
	}
	if a.get(a.portal+"/orgs/"+a.orgID).URL.Path != "/login" {
		t.Fatal("the dashboard still opens after logging out")
	}
	dash := a.submit(out, "Log in", url.Values{"email": {a.email},
		"password": {a.password}})
	wantStatus(t, dash, http.StatusOK)
	if dash.URL.Path != "/orgs/"+a.orgID {
		t.Fatalf("log-in ended on %s, want the dashboard:\n%s", dash.URL, dash.Text())
	}
	a.sessions = append(a.sessions, a.cookie(a.portal, adminCookie))
	return dash
}

// teamsURL is the admin's Settings > Teams.
func (a *admin) teamsURL() string { return a.portal + "/orgs/" + a.orgID + "/settings/teams" }

// staffApprove logs staff in at /staff/login and approves the organisation
// with a note; it returns the staff browser.
func staffApprove(t testing.TB, s *devstack.Stack, orgName, note string) *browser {
	t.Helper()
	b := newBrowser(t, "staff")
	login := b.get(s.PortalURL + "/staff/login")
	wantStatus(t, login, http.StatusOK)
	home := b.submit(login, "Log in", url.Values{"email": {s.StaffEmail},
		"password": {s.StaffPassword}})
	wantStatus(t, home, http.StatusOK)
	if home.URL.Path != "/staff" {
		t.Fatalf("staff log-in ended on %s:\n%s", home.URL, home.Text())
	}
	wantText(t, home, "Waiting for approval (1)", orgName)
	done := b.submit(home, "Approve "+orgName, url.Values{"note": {note}})
	wantStatus(t, done, http.StatusOK)
	wantText(t, done, "Approved "+orgName+".")
	// The list reads the stage the workflow mirrors into the store, which
	// follows the signal by a moment.
	devstacktest.Eventually(t, time.Minute, "no registration pending", func() error {
		if p := b.get(s.PortalURL + "/staff"); !strings.Contains(p.Text(),
			"Waiting for approval (0)") {
			return errors.New("still pending")
		}
		return nil
	})
	return b
}

// onboardingStatus asks the organisation's workflow where it stands.
func onboardingStatus(s *devstack.Stack, orgID string) (workflows.OnboardingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st workflows.OnboardingStatus
	v, err := s.Client.QueryWorkflow(ctx, workflows.OnboardingID(orgID), "",
		workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// waitStage waits until the workflow reports stage.
func waitStage(t testing.TB, s *devstack.Stack, orgID string, stage workflows.Stage) {
	t.Helper()
	devstacktest.Eventually(t, time.Minute, "stage "+string(stage), func() error {
		st, err := onboardingStatus(s, orgID)
		if err != nil {
			return err
		}
		if st.Stage != stage {
			return fmt.Errorf("stage %s", st.Stage)
		}
		return nil
	})
}

// consentAtMicrosoft presses the consent button in Settings > Teams,
// follows the redirect to the Graph simulator, signs in as the demo
// tenant's admin and presses decision ("Accept" or "Cancel"). It returns
// the portal's callback page and the consent state the portal sent.
func consentAtMicrosoft(t testing.TB, s *devstack.Stack, a *admin, decision string) (
	*page, string) {
	t.Helper()
	teams := a.get(a.teamsURL())
	wantStatus(t, teams, http.StatusOK)
	signin := a.submit(teams, "Click here to sign and add users", nil)
	if len(signin.Hops) != 1 || signin.Hops[0].Status != http.StatusSeeOther ||
		!strings.HasPrefix(signin.Hops[0].To, s.Graph.URL()+"/organizations/v2.0/adminconsent?") {
		t.Fatalf("the consent button led through %v, want one 303 to the Graph simulator's "+
			"admin consent", signin.Hops)
	}
	target, err := url.Parse(signin.Hops[0].To)
	if err != nil {
		t.Fatal(err)
	}
	q := target.Query()
	if q.Get("client_id") != devstack.DevClientID ||
		q.Get("redirect_uri") != s.PortalURL+"/teams/consent/callback" || q.Get("state") == "" {
		t.Fatalf("consent URL %s", target)
	}
	wantStatus(t, signin, http.StatusOK)
	wantText(t, signin, "Sign in")

	perms := a.submit(signin, "Sign in", url.Values{"email": {s.DemoAdminEmail},
		"password": {s.DemoAdminPassword}})
	wantStatus(t, perms, http.StatusOK)
	wantText(t, perms, "Permissions requested", "Demo Oy")

	cb := a.submit(perms, decision, nil)
	if len(cb.Hops) != 1 ||
		!strings.HasPrefix(cb.Hops[0].To, s.PortalURL+"/teams/consent/callback?") {
		t.Fatalf("%s led through %v, want one redirect to the portal's callback", decision,
			cb.Hops)
	}
	back, _ := url.Parse(cb.Hops[0].To)
	if back.Query().Get("state") != q.Get("state") {
		t.Fatal("the callback does not carry the state the portal sent")
	}
	wantStatus(t, cb, http.StatusOK)
	return cb, q.Get("state")
}

// waitActivated reloads the page the callback points to, as its refresh
// does, until it says that the users were activated.
func waitActivated(t testing.TB, a *admin, next string) *page {
	t.Helper()
	var p *page
	devstacktest.Eventually(t, importDeadline, "10 users have been activated", func() error {
		p = a.get(a.portal + next)
		if p.Status != http.StatusOK {
			return fmt.Errorf("status %d", p.Status)
		}
		if !strings.Contains(p.Text(), "10 users have been activated") {
			return errors.New("the page does not say so yet")
		}
		return nil
	})
	return p
}

// wantUnmatched checks the result's lists of people OneSync could not
// match in the demo tenant and the demo OneCloud organisation.
func wantUnmatched(t testing.TB, p *page) {
	t.Helper()
	lists := p.listsUnder()
	teams := lists["Teams users without an extension"]
	exts := lists["Extensions without a Teams user"]
	wantItems(t, "Teams users without an extension", teams,
		"Lilja Lehtonen", "Eino Lehtinen", "Demo Oy Admin")
	wantItems(t, "Extensions without a Teams user", exts, "1000 Reception", "1099 Conference room")
	if amb := lists["Teams users matching more than one extension"]; len(amb) > 0 {
		t.Errorf("ambiguous users listed: %q", amb)
	}
}

func wantItems(t testing.TB, list string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %q, want %d items: %q", list, got, len(want), want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("%s: %q lacks %q", list, got, w)
		}
	}
}

// TestJourneyFromRegistrationToActivatedUsers drives the whole onboarding
// over HTTP: register, wait for approval, staff approval with a note, log
// in again, the Microsoft consent at the Graph simulator and the import
// result; then it checks the Onboarding workflow's recorded history and
// disconnects Teams, which ends the presence sync.
func TestJourneyFromRegistrationToActivatedUsers(t *testing.T) {
	l := newLaps(t)
	s := devstacktest.Start(t, devstack.Options{SyncWindow: 2 * time.Second})
	l.lap("start the stack")

	a, dash := register(t, s.PortalURL, "Demo Oy", onecloudsim.DemoOrg, "aino.admin@demo-oy.example")
	wantText(t, dash, "Demo Oy", "Your registration is waiting for approval",
		"Who acts now: Setera")
	if !strings.Contains(dash.Body, `http-equiv="refresh"`) {
		t.Error("the waiting dashboard does not refresh itself")
	}
	l.lap("register")

	staff := staffApprove(t, s, "Demo Oy", "Contract checked by phone")
	l.lap("staff log in and approve")

	dash = a.logOutAndIn(t)
	devstacktest.Eventually(t, time.Minute, "the dashboard asks to connect Teams", func() error {
		dash = a.get(s.PortalURL + "/orgs/" + a.orgID)
		if !strings.Contains(dash.Text(), "connect Microsoft Teams") {
			return errors.New("not yet")
		}
		return nil
	})
	wantText(t, dash, "Who acts now: You", "Open Settings > Teams", "Note from Setera",
		"Contract checked by phone")
	l.lap("admin log in again, see the approval")

	cb, state := consentAtMicrosoft(t, s, a, "Accept")
	wantText(t, cb, "Consent received")
	next := cb.attrValue("data-consent-next")
	if !strings.HasPrefix(next, "/orgs/"+a.orgID+"/settings/teams?consent=received") {
		t.Fatalf("the callback sends the browser to %q", next)
	}
	l.lap("consent at the Graph simulator")

	teams := waitActivated(t, a, next)
	wantUnmatched(t, teams)
	l.lap("import shown in Settings > Teams")

	result := a.get(s.PortalURL + "/orgs/" + a.orgID + "/result")
	wantStatus(t, result, http.StatusOK)
	wantText(t, result, "10 users have been activated")
	wantUnmatched(t, result)
	users := a.get(s.PortalURL + "/orgs/" + a.orgID + "/users")
	wantStatus(t, users, http.StatusOK)
	wantText(t, users, "Aino")

	// The workflow's recorded history.
	id := workflows.OnboardingID(a.orgID)
	h := history(t, s.Client, id, "")
	last := h.Events[len(h.Events)-1]
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("the onboarding's last event is %s, want completed:\n%s",
			last.GetEventType(), describeEvents(h))
	}
	want := []string{"awaiting-approval", "awaiting-consent", "importing", "syncing"}
	if got := stages(t, h); !slices.Equal(got, want) {
		t.Errorf("stages upserted %q, want %q", got, want)
	}
	acts := completedActivities(h)
	iv, ii := slices.Index(acts, workflows.ActivityVerifyConsent),
		slices.Index(acts, workflows.ActivityImportUsers)
	if iv < 0 || ii < 0 || iv > ii {
		t.Errorf("completed activities %q, want VerifyConsent then ImportUsers", acts)
	}
	child := childStarted(h, workflows.PresenceSyncWorkflow)
	if child != workflows.PresenceSyncID(graphsim.DemoTenantID) {
		t.Errorf("child PresenceSync started: %q, want %q", child,
			workflows.PresenceSyncID(graphsim.DemoTenantID))
	}

	secrets := map[string]string{
		"the admin's password":             a.password,
		"the staff password":               s.StaffPassword,
		"the demo tenant admin's password": s.DemoAdminPassword,
		"an access_token field":            "access_token",
		"a JWT":                            "eyJ0eXAiOiJKV1Qi",
		"the consent state":                state,
		"the staff session cookie":         staff.cookie(s.PortalURL, staffCookie),
		"the admin's form token cookie":    a.cookie(s.PortalURL, csrfCookie),
	}
	for i, v := range a.sessions {
		secrets[fmt.Sprintf("admin session cookie %d", i+1)] = v
	}
	if found := secretsIn(t, h, secrets); len(found) > 0 {
		t.Errorf("the onboarding's history holds %v", found)
	}
	// A control: the scan does read the payloads, where the organisation
	// id and the approval note are.
	control := map[string]string{"the note": "Contract checked by phone", "the org": a.orgID}
	if found := secretsIn(t, h, control); len(found) != len(control) {
		t.Errorf("the scan found only %v of the note and the org id in the history", found)
	}
	l.lap("check the onboarding history")
	recordHistory(t, "onboarding-journey", h, secrets)

	// Disconnect on the dashboard ends the tenant's presence sync.
	syncID := workflows.PresenceSyncID(graphsim.DemoTenantID)
	devstacktest.Eventually(t, time.Minute, "two polling windows", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := devstacktest.SyncStatus(ctx, s, graphsim.DemoTenantID)
		if err != nil {
			return err
		}
		if st.Totals.Windows < 2 {
			return fmt.Errorf("%d windows", st.Totals.Windows)
		}
		return nil
	})
	dash = a.get(s.PortalURL + "/orgs/" + a.orgID)
	gone := a.submit(dash, "Disconnect Teams", url.Values{"confirm": {"yes"}})
	wantStatus(t, gone, http.StatusOK)
	devstacktest.Eventually(t, time.Minute, "the presence sync ends", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := s.Client.DescribeWorkflowExecution(ctx, syncID, "")
		if err != nil {
			return err
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st !=
			enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
	wantText(t, a.get(a.teamsURL()), "Teams is disconnected")
	l.lap("disconnect ends the presence sync")

	sh := history(t, s.Client, syncID, "")
	if found := secretsIn(t, sh, secrets); len(found) > 0 {
		t.Errorf("the presence sync's history holds %v", found)
	}
	if n := slices.Index(completedActivities(sh), workflows.ActivityReleaseLines); n < 0 {
		t.Errorf("the presence sync did not release the lines: %q", completedActivities(sh))
	}
	recordHistory(t, "presence-sync-disconnected", sh, secrets)
}

// TestConsentCancelledThenRetried presses Cancel at Microsoft (case C4):
// the portal says consent was cancelled and offers to try again, the
// workflow stays waiting for consent, and the retry succeeds.
func TestConsentCancelledThenRetried(t *testing.T) {
	l := newLaps(t)
	s := devstacktest.Start(t, devstack.Options{})
	l.lap("start the stack")
	a, _ := register(t, s.PortalURL, "Demo Oy", onecloudsim.DemoOrg, "aino.admin@demo-oy.example")
	staffApprove(t, s, "Demo Oy", "")
	waitStage(t, s, a.orgID, workflows.StageAwaitingConsent)
	l.lap("register and approve")

	cb, _ := consentAtMicrosoft(t, s, a, "Cancel")
	wantText(t, cb, "Consent was cancelled", "Try again from Settings > Teams")
	next := cb.attrValue("data-consent-next")
	if next != "/orgs/"+a.orgID+"/settings/teams?consent=cancelled" {
		t.Fatalf("the callback sends the browser to %q", next)
	}
	teams := a.get(s.PortalURL + next)
	wantStatus(t, teams, http.StatusOK)
	wantText(t, teams, "Consent was cancelled")
	if !teams.hasButton("Click here to sign and add users") {
		t.Fatalf("Settings > Teams offers no retry after the cancel:\n%s", teams.Text())
	}

	devstacktest.Eventually(t, time.Minute, "the workflow records the cancel", func() error {
		st, err := onboardingStatus(s, a.orgID)
		if err != nil {
			return err
		}
		if st.Stage != workflows.StageAwaitingConsent {
			return fmt.Errorf("stage %s, want it to stay %s", st.Stage,
				workflows.StageAwaitingConsent)
		}
		if st.LastErrorCode != workflows.LastErrorConsentCancelled {
			return fmt.Errorf("last error code %q", st.LastErrorCode)
		}
		return nil
	})
	if st, err := onboardingStatus(s, a.orgID); err != nil || st.TenantID != "" {
		t.Fatalf("after the cancel: tenant %q, error %v; want no tenant", st.TenantID, err)
	}
	l.lap("cancel at the Graph simulator")

	cb, _ = consentAtMicrosoft(t, s, a, "Accept")
	wantText(t, cb, "Consent received")
	result := waitActivated(t, a, cb.attrValue("data-consent-next"))
	wantUnmatched(t, result)
	waitStage(t, s, a.orgID, workflows.StageSyncing)
	l.lap("retry and import")
}

// TestRegisteringTwiceSaysAlreadyRegistered registers the same
// organisation with the same email twice (case C16): the second attempt
// reads "already registered" and one workflow exists.
func TestRegisteringTwiceSaysAlreadyRegistered(t *testing.T) {
	s := devstacktest.Start(t, devstack.Options{})
	const email = "aino.admin@demo-oy.example"
	a, _ := register(t, s.PortalURL, "Demo Oy", onecloudsim.DemoOrg, email)

	again := newBrowser(t, "second registration")
	p := registerForm(again, s.PortalURL, "Demo Oy", onecloudsim.DemoOrg,
		"Aino.Admin@Demo-Oy.example", randomPassword(t))
	wantStatus(t, p, http.StatusConflict)
	wantText(t, p, "already registered", "Log in instead")
	if again.cookie(s.PortalURL, adminCookie) != "" {
		t.Error("the refused registration started a session")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	orgs, err := s.Store.Orgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 1 || orgs[0].ID != a.orgID {
		t.Fatalf("organisations in the store: %+v, want only %s", orgs, a.orgID)
	}
	query := fmt.Sprintf("WorkflowType = '%s'", workflows.OnboardingWorkflow)
	devstacktest.Eventually(t, time.Minute, "one onboarding workflow listed", func() error {
		resp, err := s.Client.ListWorkflow(ctx, listRequest(query))
		if err != nil {
			return err
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if !slices.Equal(ids, []string{workflows.OnboardingID(a.orgID)}) {
			return fmt.Errorf("onboarding workflows %q", ids)
		}
		return nil
	})
}

func listRequest(query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 10}
}
