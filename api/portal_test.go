package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/mocks"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// TestJourney walks the admin's and the staff member's pages from
// registration to "12 users have been activated", asserting at each step
// what they read and what reached the workflow.
func TestJourney(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "Aino@Acme.example")

	if len(e.started) != 1 {
		t.Fatalf("%d workflows started, want 1", len(e.started))
	}
	o := e.started[0]
	if o.ID != workflows.OnboardingID(org) || o.TaskQueue != workflows.TaskQueue ||
		!o.WorkflowExecutionErrorWhenAlreadyStarted ||
		o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
		t.Errorf("start options %+v", o)
	}
	if sa := o.TypedSearchAttributes; sa.Size() != 2 {
		t.Errorf("search attributes: %d, want org and stage", sa.Size())
	} else if v, _ := sa.GetKeyword(stageKey); v != "awaiting-approval" {
		t.Errorf("stage attribute %q", v)
	}

	dash := admin.get("/orgs/" + org)
	wantStatus(t, dash, http.StatusOK)
	wantText(t, dash, "Acme Oy", "Your registration is waiting for approval",
		"Who acts now: Setera", "this page refreshes itself")
	if !strings.Contains(dash.Body, `<meta http-equiv="refresh" content="5">`) {
		t.Error("waiting dashboard does not refresh itself")
	}
	if !strings.Contains(dash.Body, `aria-current="step"`) {
		t.Error("stepper marks no current step")
	}

	staff := e.staff("sami@setera.example")
	home := staff.get("/staff")
	wantText(t, home, "Waiting for approval (1)", "Acme Oy", "Approve Acme Oy",
		"Open "+workflows.OnboardingID(org)+" in the Temporal UI")
	if !strings.Contains(home.Body, `href="http://127.0.0.1:8233/namespaces/default/workflows/`+
		workflows.OnboardingID(org)+`"`) {
		t.Error("no Temporal UI link to the workflow")
	}

	done := staff.post("/staff", "/staff/orgs/"+org+"/approve",
		url.Values{"note": {"Contract checked"}})
	wantStatus(t, done, http.StatusSeeOther)
	sigs := e.signalsNamed(workflows.SignalApprove)
	if len(sigs) != 1 || sigs[0].WorkflowID != workflows.OnboardingID(org) ||
		sigs[0].Arg != (workflows.ApproveSignal{Staff: "sami@setera.example",
			Note: "Contract checked"}) {
		t.Fatalf("approve signals %+v", sigs)
	}
	// The store still says awaiting-approval (no worker runs here), yet
	// the list must not offer to decide the same registration again.
	wantText(t, staff.get(done.Location), "Approved Acme Oy.", "Waiting for approval (0)")

	e.setStatus(org, workflows.OnboardingStatus{OrgID: org,
		Stage: workflows.StageAwaitingConsent, ApprovedBy: "sami@setera.example"})
	dash = admin.get("/orgs/" + org)
	wantText(t, dash, "connect Microsoft Teams", "Who acts now: You", "Open Settings > Teams")
	if strings.Contains(dash.Body, `http-equiv="refresh"`) {
		t.Error("dashboard refreshes while the admin must act")
	}

	teams := admin.get("/orgs/" + org + "/settings/teams")
	wantText(t, teams, "Click here to sign and add users")

	// Without JavaScript the button's POST is answered by a redirect to
	// Microsoft's admin consent page.
	start := admin.post("/orgs/"+org+"/settings/teams", "/orgs/"+org+"/settings/teams/consent",
		url.Values{})
	wantStatus(t, start, http.StatusSeeOther)
	target, err := url.Parse(start.Location)
	if err != nil {
		t.Fatal(err)
	}
	q := target.Query()
	if target.Scheme+"://"+target.Host+target.Path != authority+"/organizations/v2.0/adminconsent" ||
		q.Get("client_id") != clientID ||
		q.Get("redirect_uri") != "http://portal.test/teams/consent/callback" ||
		len(q.Get("state")) != 43 {
		t.Fatalf("consent URL %s", start.Location)
	}

	cb := admin.get(consentPath + "?" + url.Values{"admin_consent": {"True"},
		"tenant": {tenantA}, "state": {q.Get("state")}}.Encode())
	wantStatus(t, cb, http.StatusOK)
	wantText(t, cb, "Consent received", "Continue to Settings > Teams")
	granted := e.signalsNamed(workflows.SignalConsentGranted)
	if len(granted) != 1 || granted[0].Arg.(workflows.ConsentGrantedSignal).TenantID != tenantA {
		t.Fatalf("consent-granted signals %+v", granted)
	}
	next := attr(t, cb.Body, "data-consent-next")
	waiting := admin.get(next)
	wantText(t, waiting, "Microsoft confirmed your consent")
	if !strings.Contains(waiting.Body, `http-equiv="refresh"`) {
		t.Error("Settings > Teams does not refresh while the consent is checked")
	}

	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageImporting,
		TenantID: tenantA})
	wantText(t, admin.get("/orgs/"+org), "OneSync is importing your Teams users",
		"Who acts now: OneSync")

	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageSyncing,
		TenantID: tenantA, Import: &workflows.ImportResult{Activated: 12, TeamsWithoutExt: 1,
			ExtWithoutTeams: 2, Ambiguous: 1, UnmatchedTeams: []string{"Ville Vieras"},
			UnmatchedExts:  []string{"205 Reception", "206 Warehouse"},
			AmbiguousUsers: []string{"Kari Kaksoset"}}})
	res := admin.get("/orgs/" + org + "/result")
	wantStatus(t, res, http.StatusOK)
	wantText(t, res, "12 users have been activated", "Ville Vieras", "205 Reception",
		"206 Warehouse", "Kari Kaksoset", "OneSync did not guess")
	wantText(t, admin.get(next), "12 users have been activated")
	wantText(t, admin.get("/orgs/"+org), "12 users activated: presence is syncing")

	out := admin.post("/orgs/"+org, "/logout", url.Values{})
	wantStatus(t, out, http.StatusSeeOther)
	if a := admin.get("/orgs/" + org); a.Status != http.StatusSeeOther || a.Location != "/login" {
		t.Errorf("after log out the dashboard answers %d %q", a.Status, a.Location)
	}
}

func attr(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, name+`="`)
	if i < 0 {
		t.Fatalf("no %s attribute in:\n%s", name, body)
	}
	v := body[i+len(name)+2:]
	v = v[:strings.IndexByte(v, '"')]
	return strings.ReplaceAll(v, "&amp;", "&")
}

func TestRegisterValidation(t *testing.T) {
	long := strings.Repeat("x", 101)
	cases := []struct {
		name  string
		field string
		value string
		want  string
	}{
		{"empty organisation", "org_name", "", "Enter the organisation's name."},
		{"overlong organisation", "org_name", long, "use at most 100 characters"},
		{"control character", "name", "Aino\x07", "contains characters that cannot be used"},
		{"empty customer id", "pbx_org", "", "Enter your OneCloud customer id."},
		{"bad customer id", "pbx_org", "acme oy!", "Use only letters, digits and hyphens"},
		{"overlong customer id", "pbx_org", strings.Repeat("a", 65), "at most 64 characters"},
		{"empty name", "name", "", "Enter the name of the admin."},
		{"empty email", "email", "", "Enter an email address."},
		{"bad email", "email", "aino.acme.example", "Enter an email address like name@example.com."},
		{"email with name", "email", "Aino <aino@acme.example>", "like name@example.com"},
		{"overlong email", "email", strings.Repeat("a", 250) + "@x.fi", "at most 254 characters"},
		{"empty phone", "phone", "", "Enter a phone number."},
		{"bad phone", "phone", "call me", "Enter a phone number like"},
		{"short password", "password", "short", "Use at least 12 characters."},
		{"overlong password", "password", strings.Repeat("p", 73), "at most 72 bytes"},
		{"different confirmation", "password_confirm", "something else entirely",
			"The two passwords differ"},
	}
	e := newEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser()
			form := registration("Acme Oy", "aino@acme.example")
			form.Set(c.field, c.value)
			if c.field == "password" {
				form.Set("password_confirm", c.value)
			}
			a := b.post("/register", "/register", form)
			wantStatus(t, a, http.StatusUnprocessableEntity)
			if got := fieldError(a.Body, c.field); !strings.Contains(got, c.want) {
				t.Errorf("message next to %s is %q, want %q", c.field, got, c.want)
			}
			wantText(t, a, "Some fields need attention")
			// What was typed stays; the password never comes back.
			if c.field != "org_name" && !strings.Contains(a.Body, `value="Acme Oy"`) {
				t.Error("the organisation's name was not kept")
			}
			if strings.Contains(a.Body, "correct horse battery") {
				t.Error("the password was sent back to the browser")
			}
		})
	}
	if len(e.started) != 0 {
		t.Errorf("%d workflows started for invalid registrations", len(e.started))
	}
	if orgs, _ := e.db.Orgs(context.Background()); len(orgs) != 0 {
		t.Errorf("%d organisations stored for invalid registrations", len(orgs))
	}
}

// TestRegisterDuplicate is case C16: the same organisation registers twice
// with the same email.
func TestRegisterDuplicate(t *testing.T) {
	e := newEnv(t)
	e.register("Acme Oy", "aino@acme.example")

	b := e.browser()
	a := b.post("/register", "/register", registration("Acme Oy", "AINO@acme.example"))
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "already registered", "Log in instead")
	if !strings.Contains(a.Body, `value="AINO@acme.example"`) {
		t.Error("the typed email was not kept")
	}
	if len(e.started) != 1 {
		t.Errorf("%d onboarding workflows, want 1", len(e.started))
	}
	if orgs, _ := e.db.Orgs(context.Background()); len(orgs) != 1 {
		t.Errorf("%d organisations stored, want 1", len(orgs))
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	_, org := e.register("Acme Oy", "aino@acme.example")

	b := e.browser()
	wantText(t, b.get("/login"), "Log in with the email address and password")

	a := b.post("/login", "/login", url.Values{"email": {"aino@acme.example"},
		"password": {"wrong password here"}})
	wantStatus(t, a, http.StatusUnauthorized)
	wantText(t, a, "The email address or the password is wrong")
	if !strings.Contains(a.Body, `value="aino@acme.example"`) {
		t.Error("the typed email was not kept")
	}

	a = b.post("/login", "/login", url.Values{"email": {""}, "password": {""}})
	wantStatus(t, a, http.StatusUnprocessableEntity)
	if fieldError(a.Body, "email") == "" || fieldError(a.Body, "password") == "" {
		t.Errorf("empty fields have no messages:\n%s", text(a.Body))
	}

	a = b.post("/login", "/login", url.Values{"email": {"Aino@Acme.example"},
		"password": {"correct horse battery"}})
	wantStatus(t, a, http.StatusSeeOther)
	if a.Location != "/orgs/"+org {
		t.Errorf("log in goes to %q", a.Location)
	}
	var sess *http.Cookie
	for _, c := range a.Cookies {
		if c.Name == adminCookie {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode ||
		sess.Path != "/" || sess.Secure {
		t.Errorf("session cookie %+v", sess)
	}
	if _, err := e.db.Session(context.Background(), sess.Value, e.clock()); err == nil {
		t.Error("the store holds the cookie value itself, not its digest")
	}
	if _, err := e.db.Session(context.Background(), digest(sess.Value), e.clock()); err != nil {
		t.Errorf("no session under the cookie's digest: %v", err)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t)
	e.register("Acme Oy", "aino@acme.example")
	b := e.browser()
	wrong := url.Values{"email": {"aino@acme.example"}, "password": {"wrong password here"}}
	for i := 0; i < maxFailures; i++ {
		wantStatus(t, b.post("/login", "/login", wrong), http.StatusUnauthorized)
	}

	right := url.Values{"email": {"aino@acme.example"}, "password": {"correct horse battery"}}
	a := b.post("/login", "/login", right)
	wantStatus(t, a, http.StatusTooManyRequests)
	wantText(t, a, "Too many failed log-ins", "wait 15 minutes")

	// The same address is refused for another account as well.
	other := b.post("/login", "/login", url.Values{"email": {"someone@else.example"},
		"password": {"whatever password"}})
	wantStatus(t, other, http.StatusTooManyRequests)

	e.advance(failureWindow + time.Second)
	wantStatus(t, b.post("/login", "/login", right), http.StatusSeeOther)
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageAwaitingConsent})

	t.Run("register without token", func(t *testing.T) {
		b := e.browser()
		b.get("/register")
		a := b.post("", "/register", registration("Other Oy", "o@other.example"))
		wantStatus(t, a, http.StatusForbidden)
		wantText(t, a, "This form has expired", "Open the form again")
	})
	t.Run("login with another token", func(t *testing.T) {
		b := e.browser()
		b.get("/login")
		form := url.Values{"email": {"aino@acme.example"},
			"password": {"correct horse battery"}, "csrf": {strings.Repeat("A", 43)}}
		wantStatus(t, b.post("", "/login", form), http.StatusForbidden)
	})
	t.Run("consent with the pre-session token", func(t *testing.T) {
		loginToken := csrfOf(t, admin.get("/login").Body)
		a := admin.post("", "/orgs/"+org+"/settings/teams/consent",
			url.Values{"csrf": {loginToken}})
		wantStatus(t, a, http.StatusForbidden)
	})
	t.Run("consent without token", func(t *testing.T) {
		a := admin.post("", "/orgs/"+org+"/settings/teams/consent", url.Values{})
		wantStatus(t, a, http.StatusForbidden)
	})
	t.Run("staff approve without token", func(t *testing.T) {
		staff := e.staff("sami@setera.example")
		a := staff.post("", "/staff/orgs/"+org+"/approve", url.Values{"note": {"ok"}})
		wantStatus(t, a, http.StatusForbidden)
		if n := len(e.signalsNamed(workflows.SignalApprove)); n != 0 {
			t.Errorf("%d approve signals sent without a CSRF token", n)
		}
	})
}

func TestOtherOrganisation(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	_, other := e.register("Beta Ab", "bo@beta.example")

	for _, path := range []string{"/orgs/" + other, "/orgs/" + other + "/users",
		"/orgs/" + other + "/settings/teams", "/orgs/" + other + "/result",
		"/orgs/no-such-org"} {
		a := admin.get(path)
		wantStatus(t, a, http.StatusNotFound)
		wantText(t, a, "Page not found")
		if strings.Contains(a.Body, "Beta Ab") {
			t.Errorf("%s shows the other organisation's name", path)
		}
	}
	a := admin.post("/orgs/"+org, "/orgs/"+other+"/settings/teams/consent", url.Values{})
	wantStatus(t, a, http.StatusNotFound)
}

// consentState starts a consent with the JSON answer the popup script
// asks for and returns the state in Microsoft's URL.
func consentState(t *testing.T, b *browser, org string) string {
	t.Helper()
	token := csrfOf(t, b.get("/orgs/"+org+"/settings/teams").Body)
	req, err := http.NewRequest(http.MethodPost,
		b.e.srv.URL+"/orgs/"+org+"/settings/teams/consent", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(csrfHeader, token)
	a := b.do(req)
	wantStatus(t, a, http.StatusOK)
	var body struct{ URL string }
	if err := json.Unmarshal([]byte(a.Body), &body); err != nil {
		t.Fatalf("consent answer %q: %v", a.Body, err)
	}
	u, err := url.Parse(body.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state")
}

func TestConsentCallback(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageAwaitingConsent})

	callback := func(b *browser, v url.Values) answer { return b.get(consentPath + "?" + v.Encode()) }
	success := func(state string) url.Values {
		return url.Values{"admin_consent": {"True"}, "tenant": {tenantA}, "state": {state}}
	}

	t.Run("cancelled (C4) with admin_consent=True (C5)", func(t *testing.T) {
		state := consentState(t, admin, org)
		a := callback(admin, url.Values{"error": {"access_denied"}, "admin_consent": {"True"},
			"error_description": {"AADSTS65004: User declined to consent to access the app."},
			"state":             {state}})
		wantStatus(t, a, http.StatusOK)
		wantText(t, a, "Consent was cancelled", "Press the button to try again", "AADSTS65004")
		failed := e.signalsNamed(workflows.SignalConsentFailed)
		if len(failed) != 1 {
			t.Fatalf("%d consent-failed signals, want 1", len(failed))
		}
		if sig := failed[0].Arg.(workflows.ConsentFailedSignal); sig.Kind != "cancelled" ||
			sig.Code != "AADSTS65004" {
			t.Errorf("consent-failed signal %+v", sig)
		}
		next := admin.get(attr(t, a.Body, "data-consent-next"))
		wantText(t, next, "Consent was cancelled", "Click here to sign and add users")
	})

	t.Run("consent_required with admin_consent=True", func(t *testing.T) {
		state := consentState(t, admin, org)
		a := callback(admin, url.Values{"error": {"consent_required"},
			"admin_consent": {"True"}, "tenant": {tenantA}, "state": {state}})
		wantText(t, a, "Microsoft did not allow the consent")
	})

	t.Run("altered state", func(t *testing.T) {
		state := consentState(t, admin, org)
		altered := "A" + state[1:]
		if altered == state {
			altered = "B" + state[1:]
		}
		a := callback(admin, success(altered))
		wantStatus(t, a, http.StatusBadRequest)
		wantText(t, a, "cannot be used", "Try again from Settings > Teams")
	})

	t.Run("replayed state", func(t *testing.T) {
		state := consentState(t, admin, org)
		wantStatus(t, callback(admin, success(state)), http.StatusOK)
		a := callback(admin, success(state))
		wantStatus(t, a, http.StatusBadRequest)
		wantText(t, a, "It was already used")
	})

	t.Run("expired state", func(t *testing.T) {
		state := consentState(t, admin, org)
		e.advance(consentTTL + time.Second)
		a := callback(admin, success(state))
		wantStatus(t, a, http.StatusBadRequest)
		wantText(t, a, "more than 10 minutes old")
	})

	t.Run("state of another session", func(t *testing.T) {
		state := consentState(t, admin, org)
		other := e.browser()
		wantStatus(t, other.post("/login", "/login", url.Values{"email": {"aino@acme.example"},
			"password": {"correct horse battery"}}), http.StatusSeeOther)
		a := callback(other, success(state))
		wantStatus(t, a, http.StatusBadRequest)
		wantText(t, a, "does not belong to this browser session")
	})

	t.Run("no session", func(t *testing.T) {
		a := callback(e.browser(), success("whatever-state-value"))
		wantStatus(t, a, http.StatusUnauthorized)
		wantText(t, a, "Log in to finish connecting Teams")
	})

	if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != 1 {
		t.Errorf("%d consent-granted signals, want exactly the one valid callback", n)
	}
}

func TestConsentNotYetApproved(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	teams := admin.get("/orgs/" + org + "/settings/teams")
	wantText(t, teams, "waiting for approval")
	if strings.Contains(teams.Body, "Click here to sign") {
		t.Error("consent button shown before approval")
	}
	a := admin.post("/orgs/"+org+"/settings/teams", "/orgs/"+org+"/settings/teams/consent",
		url.Values{})
	wantStatus(t, a, http.StatusConflict)
	wantText(t, a, "once Setera has approved your organisation")
}

func TestVerificationFailureShown(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageAwaitingConsent,
		LastErrorCode: workflows.ErrTenantTaken,
		LastError:     "This Microsoft tenant is already connected to another organisation."})
	wantText(t, admin.get("/orgs/"+org+"/settings/teams"),
		"already connected to another organisation", "Click here to sign and add users")
	wantText(t, admin.get("/orgs/"+org), "already connected to another organisation")

	// The admin consents again; until the workflow acts the page waits,
	// and when verification fails it shows why and stops waiting.
	state := consentState(t, admin, org)
	cb := admin.get(consentPath + "?" + url.Values{"admin_consent": {"True"},
		"tenant": {tenantA}, "state": {state}}.Encode())
	next := attr(t, cb.Body, "data-consent-next")
	waiting := admin.get(next)
	if !strings.Contains(waiting.Body, `http-equiv="refresh"`) ||
		strings.Contains(waiting.Body, "Click here to sign") {
		t.Errorf("while the consent is checked the page should wait:\n%s", text(waiting.Body))
	}
	e.advance(3 * time.Second)
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageAwaitingConsent,
		LastErrorCode: workflows.ErrTenantTaken, StageSince: e.clock(),
		LastError: "This Microsoft tenant is already connected to another organisation."})
	failed := admin.get(next)
	wantText(t, failed, "already connected to another organisation",
		"Click here to sign and add users")
	if strings.Contains(failed.Body, `http-equiv="refresh"`) {
		t.Error("the page keeps refreshing after the verification failed")
	}
}

// TestResultAfterWorkflowClosed reads the import counts from the finished
// workflow's result when its status query cannot be answered.
func TestResultAfterWorkflowClosed(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	e.setStatus(org, workflows.OnboardingStatus{OrgID: org, Stage: workflows.StageSyncing})
	e.mu.Lock()
	delete(e.statuses, workflows.OnboardingID(org))
	e.mu.Unlock()

	run := &mocks.WorkflowRun{}
	run.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, v any) error {
		*(v.(*workflows.ImportResult)) = workflows.ImportResult{Activated: 7,
			UnmatchedExts: []string{"209 Lobby"}}
		return nil
	})
	e.tc.On("GetWorkflow", mock.Anything, workflows.OnboardingID(org), "").Return(run)

	wantText(t, admin.get("/orgs/"+org+"/result"), "7 users have been activated", "209 Lobby")
	wantText(t, admin.get("/orgs/"+org), "7 users activated")
}

func TestUsersPage(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	wantText(t, admin.get("/orgs/"+org+"/users"), "No users are linked yet")

	ctx := context.Background()
	if err := e.db.BindTenant(ctx, tenantA, org, e.clock()); err != nil {
		t.Fatal(err)
	}
	changed := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	err := e.db.ReplaceLinks(ctx, tenantA, []store.Link{
		{UserID: "u1", Extension: "201", DisplayName: "Aino Admin", Email: "aino@acme.example",
			MatchedBy: "email", Availability: "Busy", Activity: "InACall", LineState: "busy",
			ChangedAt: changed},
		{UserID: "u2", Extension: "202", DisplayName: "Bertta Broken", MatchedBy: "phone",
			Broken: true, BrokenReason: "extension not found"},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := admin.get("/orgs/" + org + "/users")
	wantStatus(t, a, http.StatusOK)
	wantText(t, a, "2 Teams users are linked", "1 of the links are broken", "Aino Admin",
		"aino@acme.example", "201", "email", "Busy / InACall", "busy", "2 Mar 2026 08:30 UTC",
		"Bertta Broken", "Broken (extension not found)", "Not read yet")
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	a := e.browser().get("/login")
	h := a.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") ||
		!strings.Contains(csp, "form-action 'self' http://127.0.0.1:9") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" ||
		h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
	if strings.Contains(a.Body, "<script>") || strings.Contains(a.Body, "style=") {
		t.Error("inline script or style would be blocked by the CSP")
	}
	if !strings.Contains(a.Body, `<label for="f-email">`) ||
		!strings.Contains(a.Body, `id="f-email"`) {
		t.Error("the email input has no label")
	}
	if css := e.browser().get("/static/style.css"); css.Status != http.StatusOK ||
		!strings.Contains(css.Body, ".stepper") {
		t.Errorf("stylesheet: %d", css.Status)
	}
}

func TestSecureCookiesFlag(t *testing.T) {
	e := newEnv(t)
	h, err := NewServer(Deps{Temporal: e.tc, Store: e.db, SecureCookies: true, Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(h, "/login")
	for _, c := range rec.Result().Cookies() {
		if c.Name == csrfCookie && (!c.Secure || !c.HttpOnly) {
			t.Errorf("cookie %+v not Secure and HttpOnly", c)
		}
	}
}

func TestHomeAndOversizedForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantText(t, b.get("/"), "Teams presence on your OneCloud phones",
		"Register your organisation", "Log in")

	form := registration("Acme Oy", "aino@acme.example")
	form.Set("org_name", strings.Repeat("x", maxBodyBytes))
	a := b.post("/register", "/register", form)
	wantStatus(t, a, http.StatusRequestEntityTooLarge)
	wantText(t, a, "This form is too large", "Shorten what you typed")
	if len(e.started) != 0 {
		t.Error("an oversized registration started a workflow")
	}
	wantText(t, b.get("/no/such/page"), "Page not found")
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if a := e.browser().get("/healthz"); a.Status != http.StatusOK {
		t.Errorf("healthz %d", a.Status)
	}
}
