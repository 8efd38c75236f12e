package browser_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/e2e/browser/browsertest"
	"github.com/setera/onesync/workflows"
)

// The admin of the demo organisation, as they type it into the portal.
const (
	orgName    = "Demo Oy"
	adminName  = "Anna Admin"
	adminEmail = "anna.admin@demo-oy.example"
	adminPhone = "+358 40 123 4567"
	adminPass  = "correct horse battery"
)

// demoMatches is how many of the demo tenant's users match a OneCloud
// demo extension: ten by email or phone; two extensions and three Teams
// users (among them the admin) have no partner.
const demoMatches = 10

// Viewports a person reads the portal at: a small phone and a wide screen.
var widths = []int64{375, 1440}

// wait is how long a step that depends on Temporal and the worker may take
// on a loaded machine; the pages refresh themselves meanwhile.
const wait = 90 * time.Second

// TestJourney walks the whole product in a browser the way its users meet
// it, and asserts at each step what a person reads on the page.
func TestJourney(t *testing.T) {
	// The stack starts first so that it stops last: the browser's tabs
	// close while the servers they talk to still answer.
	browsertest.Require(t)
	s := devstacktest.Start(t, devstack.Options{})
	b := browsertest.Start(t)
	b.Expect(browsertest.Expected{
		URL: regexp.MustCompile(`/register$`), Status: 422,
		Why: "the first registration attempt has two different passwords on purpose",
	}, browsertest.Expected{
		URL:    browsertest.URLIs(s.Graph.URL() + "/favicon.ico"),
		Status: 404,
		Why:    "the Graph simulator's consent page has no icon",
	}, browsertest.Expected{
		URL:    browsertest.URLIs(s.OneCloud.URL() + "/favicon.ico"),
		Status: 404,
		Why:    "the OneCloud simulator's panel has no icon",
	}, browsertest.Expected{
		URL:     regexp.MustCompile(`/panel/demo/events$`),
		Failure: "net::ERR_ABORTED",
		Why:     "the panel's live stream is cut when its tab closes at the end",
	})

	admin := b.NewTab(t, "admin")
	orgID := register(t, admin, s)
	b.Check(t)

	// The dashboard says who acts now and refreshes itself while Setera
	// decides, so the admin never has to reload.
	admin.WaitText("#next-heading", "Your registration is waiting for approval", wait)
	admin.WaitText(".next .who", "Who acts now: Setera", wait)
	if got := admin.Text(`.step[aria-current="step"] .label`); got != "Approved by Setera" {
		t.Errorf("current step %q, want Approved by Setera", got)
	}
	refresh, err := admin.Attr(`meta[http-equiv="refresh"]`, "content")
	if err != nil || refresh == "" {
		t.Errorf("the waiting dashboard does not refresh itself (%v)", err)
	}
	admin.Shot("dashboard-waiting-for-approval")
	checkWidths(t, admin, "dashboard-waiting")
	b.Check(t)

	approve(t, b, s)
	b.Check(t)

	// No reload: the waiting dashboard notices the approval by itself.
	admin.WaitText("#next-heading", "Setera approved your organisation", wait)
	admin.WaitText(".next .who", "Who acts now: You", wait)
	admin.Shot("dashboard-approved")
	admin.Do("open Settings > Teams", chromedp.Click(chromedp.CSS(`.next a.button`)))
	admin.WaitText("h1", "Settings > Teams", wait)
	admin.WaitText("form[data-consent] button", "Click here to sign and add users", wait)
	admin.WaitText("#connect-heading + .who", "Who acts now: You", wait)
	if got := admin.Text(`.step[aria-current="step"] .label`); got != "Teams connected" {
		t.Errorf("current step on Settings > Teams %q, want Teams connected", got)
	}
	checkWidths(t, admin, "teams")
	admin.Shot("teams-before-consent")

	cancelConsent(t, admin, s)
	b.Check(t)
	acceptConsentWithKeyboard(t, admin, s, orgID)
	b.Check(t)

	activated := activatedLinks(t, s, orgID)
	if activated != demoMatches {
		t.Errorf("%d working links in the store, want %d", activated, demoMatches)
	}
	want := fmt.Sprintf("%d users have been activated", activated)
	admin.WaitText("#result-heading", want, wait)
	admin.Shot("teams-users-activated")

	admin.Do("open the dashboard", chromedp.Navigate(s.PortalURL+"/orgs/"+orgID))
	admin.WaitText("#next-heading", fmt.Sprintf("%d users activated: presence is syncing",
		activated), wait)
	admin.WaitText(".sync .facts", fmt.Sprintf("Linked users\n%d", activated), wait)
	admin.Shot("dashboard-syncing")
	checkWidths(t, admin, "dashboard-syncing")
	b.Check(t)

	callLightsTheLamp(t, b, s)
	b.Check(t)
}

// register fills the form once with two different passwords, checks that
// everything else typed is kept, then registers and returns the new
// organisation's id.
func register(t *testing.T, tab *browsertest.Tab, s *devstack.Stack) string {
	t.Helper()
	tab.Do("open the register page", chromedp.Navigate(s.PortalURL+"/register"))
	tab.WaitText("h1", "Register your organisation", wait)
	typed := map[string]string{
		"org_name": orgName, "pbx_org": onecloudsim.DemoOrg, "name": adminName,
		"email": adminEmail, "phone": adminPhone,
	}
	fill(tab, typed)
	tab.Do("type two different passwords",
		chromedp.SendKeys(chromedp.ID("f-password"), adminPass),
		chromedp.SendKeys(chromedp.ID("f-password_confirm"), adminPass+" typo"),
	)
	tab.Shot("register-form")
	tab.Do("send the registration", chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))

	tab.WaitText(".alert.problem", "Some fields need attention", wait)
	tab.WaitText("#f-password_confirm-error", "The two passwords differ", wait)
	for name, want := range typed {
		got, err := tab.Attr("#f-"+name, "value")
		if err != nil || got != want {
			t.Errorf("after the validation error field %s holds %q (%v), want %q", name, got,
				err, want)
		}
	}
	focused, _ := browsertest.Eval[bool](tab, `document.activeElement.matches("[data-focus]")`)
	if !focused {
		t.Errorf("the error summary does not take the focus after a failed submit")
	}
	tab.Shot("register-validation-error")

	tab.Do("type the password twice",
		chromedp.SendKeys(chromedp.ID("f-password"), adminPass),
		chromedp.SendKeys(chromedp.ID("f-password_confirm"), adminPass),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
	)
	tab.WaitText("h1", orgName, wait)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := s.Store.AdminByEmail(ctx, adminEmail)
	if err != nil {
		t.Fatalf("the registration is not in the store: %v", err)
	}
	return a.OrgID
}

func fill(tab *browsertest.Tab, values map[string]string) {
	for _, name := range []string{"org_name", "pbx_org", "name", "email", "phone"} {
		if v, ok := values[name]; ok {
			tab.Do("type "+name, chromedp.SendKeys(chromedp.ID("f-"+name), v))
		}
	}
}

// approve logs in on the staff pages in a browser of their own and
// approves the pending registration.
func approve(t *testing.T, b *browsertest.Browser, s *devstack.Stack) {
	t.Helper()
	if s.StaffPassword == "" {
		t.Fatal("the stack made no staff password")
	}
	staff := b.NewTab(t, "staff")
	staff.Do("open the staff log-in", chromedp.Navigate(s.PortalURL+"/staff/login"))
	staff.WaitText("h1", "Staff log in", wait)
	staff.Do("log in as staff",
		chromedp.SendKeys(chromedp.ID("f-email"), s.StaffEmail),
		chromedp.SendKeys(chromedp.ID("f-password"), s.StaffPassword),
		chromedp.Click(chromedp.CSS(`form.stack button[type="submit"]`)),
	)
	staff.WaitText("#pending-heading", "Waiting for approval (1)", wait)
	staff.WaitText(".card h3", orgName, wait)
	staff.Shot("staff-pending-registration")
	checkWidths(t, staff, "staff")

	staff.Do("approve "+orgName, chromedp.Click(chromedp.CSS(`.card form[action$="/approve"] button`)))
	staff.WaitText(".notice", "Approved "+orgName+". Its admin can now connect Microsoft Teams.",
		wait)
	staff.WaitText("#pending-heading", "Waiting for approval (0)", wait)
	devstacktest.Eventually(t, wait, "the store records the approval", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a, err := s.Store.AdminByEmail(ctx, adminEmail)
		if err != nil {
			return err
		}
		o, err := s.Store.Org(ctx, a.OrgID)
		if err != nil {
			return err
		}
		if o.Stage != string(workflows.StageAwaitingConsent) {
			return fmt.Errorf("stage %s", o.Stage)
		}
		return nil
	})
	staff.Do("reload the staff page", chromedp.Reload())
	staff.WaitText(".table-wrap", "waiting for Teams consent", wait)
	staff.Shot("staff-approved")
}

// consentSignIn signs in as the demo tenant's admin in the consent popup
// and waits for the permissions page.
func consentSignIn(t *testing.T, popup *browsertest.Tab, s *devstack.Stack) {
	t.Helper()
	popup.WaitText("h1", "Sign in", wait)
	popup.Do("sign in at the consent page",
		chromedp.SendKeys(chromedp.ID("email"), s.DemoAdminEmail),
		chromedp.SendKeys(chromedp.ID("password"), s.DemoAdminPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
	popup.WaitText("h1", "Permissions requested", wait)
	popup.WaitText("main", "Demo Oy", wait)
}

// cancelConsent presses Cancel on the consent page: the portal says that
// consent was cancelled and offers the button again.
func cancelConsent(t *testing.T, admin *browsertest.Tab, s *devstack.Stack) {
	t.Helper()
	popup := admin.Popup("consent popup (cancel)", func() {
		admin.Do("press the consent button",
			chromedp.Click(chromedp.CSS(`form[data-consent] button`)))
	})
	admin.WaitText("#consent-status", "A Microsoft window is open", wait)
	consentSignIn(t, popup, s)
	popup.Shot("consent-permissions")
	popup.Do("press Cancel", chromedp.Click(chromedp.CSS(`button[value="cancel"]`)))
	popup.WaitClosed(wait)

	admin.WaitText(".alert", "Consent was cancelled", wait)
	admin.WaitText(".alert", "Press the button to try again", wait)
	admin.WaitText("form[data-consent] button", "Click here to sign and add users", wait)
	admin.Shot("teams-consent-cancelled")
}

// acceptConsentWithKeyboard reaches the consent button with Tab, opens the
// popup with Enter and accepts there.
func acceptConsentWithKeyboard(t *testing.T, admin *browsertest.Tab, s *devstack.Stack,
	orgID string) {
	t.Helper()
	// A fresh load: the keyboard starts at the top of the page.
	admin.Do("open Settings > Teams afresh", chromedp.Navigate(
		s.PortalURL+"/orgs/"+orgID+"/settings/teams"))
	admin.WaitText("form[data-consent] button", "Click here to sign and add users", wait)
	presses := admin.PressTabUntil(`form[data-consent] button`, 40)
	t.Logf("Tab reached the consent button after %d presses", presses)

	popup := admin.Popup("consent popup (accept)", func() {
		admin.Do("press Enter on the consent button", chromedp.KeyEvent("\r"))
	})
	consentSignIn(t, popup, s)
	popup.Do("press Accept", chromedp.Click(chromedp.CSS(`button[value="accept"]`)))
	popup.WaitClosed(wait)
}

func activatedLinks(t *testing.T, s *devstack.Stack, orgID string) int {
	t.Helper()
	var n int
	devstacktest.Eventually(t, wait, "the import stores the links", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		links, err := s.Store.LinksByOrg(ctx, orgID)
		if err != nil {
			return err
		}
		n = 0
		for _, l := range links {
			if !l.Broken {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("no links yet")
		}
		return nil
	})
	return n
}

// callLightsTheLamp starts a Teams call for Aino Virtanen and watches her
// extension's lamp on the OneCloud simulator's panel go busy, then free.
func callLightsTheLamp(t *testing.T, b *browsertest.Browser, s *devstack.Stack) {
	t.Helper()
	var aino string
	for _, u := range graphsim.DemoUsers() {
		if u.DisplayName == "Aino Virtanen" {
			aino = u.ID
		}
	}
	if aino == "" {
		t.Fatal("the demo tenant has no Aino Virtanen")
	}
	const ext = "1001"
	lamp := `li.lamp[data-extension="` + ext + `"]`

	panel := b.NewTab(t, "panel")
	panel.Do("open the busy-lamp panel", chromedp.Navigate(s.OneCloud.URL()+"/panel/demo"))
	panel.WaitTrue("the panel's live stream",
		`document.querySelector('#live[data-live="true"]') !== null`, wait)
	panel.WaitTrue("lamp "+ext+" shows a state before the call",
		`document.querySelector('`+lamp+`[data-state="available"]') !== null`, wait)

	// One poll of the sync and one push to OneCloud: the lamp must change
	// within the polling interval and a second, as the simulator's own
	// clock records it.
	limit := time.Second + time.Second
	started, err := s.Graph.SetPresence(graphsim.DemoTenantID, aino, "Busy", "InACall")
	if err != nil {
		t.Fatal(err)
	}
	panel.WaitTrue("lamp "+ext+" busy",
		`document.querySelector('`+lamp+`[data-state="busy"]') !== null`, wait)
	if got := panel.Text(lamp + " .state"); got != "Busy" {
		t.Errorf("lamp %s says %q, want Busy", ext, got)
	}
	checkLatency(t, panel, lamp, started, limit, "busy")
	panel.Shot("panel-lamp-busy")

	ended, err := s.Graph.SetPresence(graphsim.DemoTenantID, aino, "Available", "Available")
	if err != nil {
		t.Fatal(err)
	}
	panel.WaitTrue("lamp "+ext+" free",
		`document.querySelector('`+lamp+`[data-state="available"]') !== null`, wait)
	if got := panel.Text(lamp + " .state"); got != "Available" {
		t.Errorf("lamp %s says %q, want Available", ext, got)
	}
	checkLatency(t, panel, lamp, ended, limit, "free")
	panel.Shot("panel-lamp-free")
}

// checkLatency compares the lamp's change time, as the OneCloud simulator
// stamped it, with the time the presence changed in the Graph simulator.
func checkLatency(t *testing.T, panel *browsertest.Tab, lamp string, from time.Time,
	limit time.Duration, state string) {
	t.Helper()
	raw, err := panel.Attr(lamp, "data-changed-at")
	if err != nil {
		t.Fatalf("lamp change time: %v", err)
	}
	at, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		t.Fatalf("lamp change time %q: %v", raw, err)
	}
	took := at.Sub(from)
	t.Logf("the lamp went %s %s after the presence changed", state, took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("the lamp went %s %s after the presence changed, want at most %s", state,
			took.Round(time.Millisecond), limit)
	}
}

// checkWidths loads the tab's page at each width and fails when a person
// would have to scroll sideways; it saves a screenshot of each.
func checkWidths(t *testing.T, tab *browsertest.Tab, what string) {
	t.Helper()
	defer tab.Viewport(1280, 900)
	for _, w := range widths {
		tab.Viewport(w, 900)
		if over := tab.HorizontalOverflow(); over > 0 {
			t.Errorf("%s at %d px is %d px wider than the window", what, w, over)
		}
		tab.Shot(fmt.Sprintf("%s-%dpx", what, w))
	}
}
