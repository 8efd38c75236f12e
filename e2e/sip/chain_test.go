package sip_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/pbx/sip"
	"github.com/setera/onesync/pbx/sip/siptest"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// domain is the SIP domain of the demo organisation's phones: they
// subscribe to sip:<extension>@pbx.demo-oy.example.
const domain = "pbx.demo-oy.example"

// syncInterval is devstacktest's polling interval; a Teams change should
// reach the phones within it plus a second.
const (
	syncInterval = time.Second
	lampTarget   = syncInterval + time.Second
)

// notifyWait bounds every wait for a NOTIFY. It is generous because the
// machine may be loaded; the figures against lampTarget are logged.
const notifyWait = 30 * time.Second

// demoCSV is the demo organisation's extension list as an admin exports
// it from Excel in a Finnish locale: a header row, ";" as the separator.
// Aada Koskinen is listed by her UPN, which is also her address. The
// reception's row has an address no Teams user has.
const demoCSV = "Email;Extension;Name\r\n" +
	"vastaanotto@demo-oy.example;1000;Reception\r\n" +
	"aino.virtanen@demo-oy.example;1001;Aino Virtanen\r\n" +
	"eero.korhonen@demo-oy.example;1002;Eero Korhonen\r\n" +
	"helmi.makinen@demo-oy.example;1003;Helmi Mäkinen\r\n" +
	"onni.nieminen@demo-oy.example;1004;Onni Nieminen\r\n" +
	"venla.makela@demo-oy.example;1005;Venla Mäkelä\r\n" +
	"leo.hamalainen@demo-oy.example;1006;Leo Hämäläinen\r\n" +
	"sofia.laine@demo-oy.example;1007;Sofia Laine\r\n" +
	"elias.heikkinen@demo-oy.example;1008;Elias Heikkinen\r\n" +
	"vaino.jarvinen@demo-oy.example;1009;Väinö Järvinen\r\n" +
	"Aada.Koskinen@demo-oy.example;1010;Aada Koskinen\r\n"

// sipStack starts Kamailio and a stack whose SIP connector publishes to
// it, and connects the demo tenant with demoCSV uploaded on the portal.
// Kamailio starts first, so it is still up when the stack's Stop clears
// the lines at the test's end.
func sipStack(t *testing.T) (*siptest.Kamailio, *devstack.Stack, string, *portal) {
	t.Helper()
	k := siptest.StartKamailio(t, siptest.KamailioOptions{Domain: domain})
	s := devstacktest.Start(t, devstack.Options{
		Connector:    devstack.ConnectorSIP,
		SIP:          sip.Config{Server: k.Addr(), Transport: sip.UDP, Domain: domain},
		SyncInterval: syncInterval,
	})
	orgID, res, p := connectThroughPortal(t, s, "Demo Oy", graphsim.DemoTenantID, demoCSV)
	if res.Activated != 10 {
		t.Fatalf("the import activated %d users from the uploaded list, want 10: %+v",
			res.Activated, res)
	}
	return k, s, orgID, p
}

// A Teams call in the Graph simulator lights the lamp of the caller's
// extension on every phone that watches it through Kamailio, and the
// call's end puts it out; the portal shows which rows of the uploaded
// list matched. Then (C15) disconnecting the sync while a user is in a
// call puts that user's lamp out: nobody's lamp stays red.
func TestTeamsCallLightsTheDeskPhoneLamp(t *testing.T) {
	k, s, orgID, p := sipStack(t)

	code, _, page := p.get("/orgs/" + orgID + "/settings/extensions")
	if code != http.StatusOK || !strings.Contains(page, "10 of 11 rows match a Teams user") {
		t.Errorf("Settings > Extensions does not say that 10 of 11 rows match:\n%s", page)
	}
	if !strings.Contains(page, "no Teams user with this") {
		t.Errorf("Settings > Extensions does not show the reception's row as unmatched")
	}

	aino := demoUser(t, "aino.virtanen")
	w := siptest.NewWatcher(t, k.Addr(), domain, "1001", siptest.EventDialog)
	requireDark(t, w)

	changed := setPresence(t, s, aino, "Busy", "InACall")
	n := w.WaitDialog(siptest.DialogConfirmed, notifyWait)
	logLatency(t, "Teams call → lamp red", n.At.Sub(changed))
	if want := `entity="sip:1001@` + domain + `"`; !strings.Contains(n.Body, want) {
		t.Errorf("the NOTIFY is not about %s:\n%s", want, n.Body)
	}

	changed = setPresence(t, s, aino, "Available", "Available")
	n = w.WaitDialog(siptest.DialogTerminated, notifyWait)
	logLatency(t, "call ended → lamp dark", n.At.Sub(changed))

	// C15: the admin disconnects while Eero is in a call.
	eero := demoUser(t, "eero.korhonen")
	we := siptest.NewWatcher(t, k.Addr(), domain, "1002", siptest.EventDialog)
	setPresence(t, s, eero, "Busy", "InACall")
	we.WaitDialog(siptest.DialogConfirmed, notifyWait)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := workflows.PresenceSyncID(graphsim.DemoTenantID)
	signalled := time.Now()
	if err := s.Client.SignalWorkflow(ctx, id, "", workflows.SignalDisconnect, nil); err != nil {
		t.Fatalf("signal disconnect: %v", err)
	}
	// The sync's polling window learns of the signal from the answer to
	// its next heartbeat, which the SDK may hold back for most of the
	// heartbeat timeout: the wait allows for that.
	n = we.WaitDialog(siptest.DialogTerminated, workflows.SyncHeartbeatTimeout+notifyWait)
	logLatency(t, "disconnect → busy lamp dark", n.At.Sub(signalled))

	if err := s.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		t.Fatalf("the presence sync did not end cleanly: %v", err)
	}
	tenant, err := s.Store.TenantByOrg(ctx, orgID)
	if err != nil || tenant.State != store.TenantDisconnected {
		t.Errorf("tenant after disconnect: %+v, %v; want state %s", tenant, err,
			store.TenantDisconnected)
	}
	// Aino was free: her lamp stays dark.
	if last, _ := w.Last(); dialogState(t, last.Body) == siptest.DialogConfirmed {
		t.Errorf("extension 1001 shows busy after the disconnect:\n%s", last.Body)
	}
}

// A clean stop of the stack (as of the worker on a deploy) while users
// are busy or presenting sends the clearing PUBLISHes: their lamps go
// dark before the process ends.
func TestStopClearsBusyLamps(t *testing.T) {
	k, s, _, _ := sipStack(t)

	lamps := map[string]*siptest.Watcher{}
	for ext, who := range map[string]struct{ user, availability, activity string }{
		"1003": {"helmi.makinen", "Busy", "InACall"},
		// Matched by the UPN in the list; presenting is do not disturb.
		"1010": {"aada.koskinen", "DoNotDisturb", "Presenting"},
	} {
		lamps[ext] = siptest.NewWatcher(t, k.Addr(), domain, ext, siptest.EventDialog)
		setPresence(t, s, demoUser(t, who.user), who.availability, who.activity)
	}
	for _, w := range lamps {
		w.WaitDialog(siptest.DialogConfirmed, notifyWait)
	}

	stopped := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("stop the stack: %v", err)
	}
	t.Logf("the stack stopped in %s", time.Since(stopped).Round(time.Millisecond))
	for ext, w := range lamps {
		n := w.WaitDialog(siptest.DialogTerminated, notifyWait)
		logLatency(t, "stop → lamp of "+ext+" dark", n.At.Sub(stopped))
	}
}

// demoUser returns the demo tenant's member whose address starts with
// local.
func demoUser(t *testing.T, local string) string {
	t.Helper()
	for _, u := range graphsim.DemoUsers() {
		if strings.HasPrefix(u.Mail, local+"@") {
			return u.ID
		}
	}
	t.Fatalf("no demo user %s", local)
	return ""
}

// setPresence changes a demo user's Teams presence and returns when the
// simulator made the change.
func setPresence(t *testing.T, s *devstack.Stack, userID, availability, activity string) time.Time {
	t.Helper()
	at, err := s.Graph.SetPresence(graphsim.DemoTenantID, userID, availability, activity)
	if err != nil {
		t.Fatalf("set presence %s/%s: %v", availability, activity, err)
	}
	return at
}

// requireDark fails when the watched lamp is red before the test changed
// anything, which would make the figures below meaningless.
func requireDark(t *testing.T, w *siptest.Watcher) {
	t.Helper()
	if n, ok := w.Last(); ok && dialogState(t, n.Body) == siptest.DialogConfirmed {
		t.Fatalf("the lamp is red before any call:\n%s", n.Body)
	}
}

func dialogState(t *testing.T, body string) string {
	t.Helper()
	s, err := siptest.DialogState(body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// logLatency logs how long a change took to reach the phone against the
// target (the polling interval plus a second). It does not fail: a loaded
// machine must not make the test flaky; the figure is what to look at.
func logLatency(t *testing.T, what string, d time.Duration) {
	t.Helper()
	verdict := "within"
	if d > lampTarget {
		verdict = "OVER"
	}
	t.Logf("%s: %s (%s the target of %s)", what, d.Round(time.Millisecond), verdict, lampTarget)
}
