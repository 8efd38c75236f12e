package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// consentReady registers an organisation whose onboarding waits for
// consent and returns the admin's browser and the organisation's id.
func (e *env) consentReady(org, email string) (*browser, string) {
	e.t.Helper()
	b, id := e.register(org, email)
	e.setStatus(id, workflows.OnboardingStatus{OrgID: id, Stage: workflows.StageAwaitingConsent})
	return b, id
}

// rawCallback sends the consent callback with a query string exactly as
// given, so that a test decides the order and repetition of parameters.
func rawCallback(b *browser, query string) answer {
	b.e.t.Helper()
	return b.get(consentPath + "?" + query)
}

// C4 exactly as Entra sends it: error=access_denied, the AADSTS65004
// description and neither tenant nor admin_consent. The page says consent
// was cancelled and offers to try again, the workflow is told it failed
// (so it stays waiting for consent) and is never told it was granted.
func TestCasesC4CancelWithoutTenant(t *testing.T) {
	e := newEnv(t)
	admin, org := e.consentReady("Acme Oy", "aino@acme.example")

	state := consentState(t, admin, org)
	a := rawCallback(admin, "error=access_denied&error_description="+
		url.QueryEscape("AADSTS65004: User declined to consent to access the app.\r\n"+
			"Trace ID: 0d9c\r\nCorrelation ID: 77aa\r\nTimestamp: 2026-03-02 09:00:00Z")+
		"&state="+url.QueryEscape(state))
	wantStatus(t, a, http.StatusOK)
	wantText(t, a, "Consent was cancelled", "Press the button to try again", "AADSTS65004")
	if strings.Contains(text(a.Body), "Trace ID") || strings.Contains(text(a.Body), "77aa") {
		t.Error("the page shows Entra's trace lines")
	}

	failed := e.signalsNamed(workflows.SignalConsentFailed)
	if len(failed) != 1 || failed[0].WorkflowID != workflows.OnboardingID(org) {
		t.Fatalf("consent-failed signals %+v, want one to the organisation's onboarding", failed)
	}
	sig := failed[0].Arg.(workflows.ConsentFailedSignal)
	if sig.Kind != "cancelled" || sig.Code != "AADSTS65004" ||
		strings.Contains(sig.Description, "Trace ID") {
		t.Errorf("consent-failed signal %+v, want cancelled AADSTS65004, first line only", sig)
	}
	if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != 0 {
		t.Errorf("%d consent-granted signals after a cancel", n)
	}

	// Try again works: the page offers the button, and a fresh state
	// with a real grant goes through.
	next := admin.get(attr(t, a.Body, "data-consent-next"))
	wantText(t, next, "Consent was cancelled", "Click here to sign and add users")
	again := consentState(t, admin, org)
	ok := rawCallback(admin, "admin_consent=True&tenant="+tenantA+"&state="+
		url.QueryEscape(again))
	wantStatus(t, ok, http.StatusOK)
	wantText(t, ok, "Consent received")
	if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != 1 {
		t.Errorf("%d consent-granted signals after the retry, want 1", n)
	}
}

// C5 in every form: an error with admin_consent=True and a tenant is a
// failure whatever the error is and wherever the parameters stand.
func TestCasesC5ErrorWithAdminConsentIsAFailure(t *testing.T) {
	e := newEnv(t)
	admin, org := e.consentReady("Acme Oy", "aino@acme.example")

	forms := []string{
		"error=consent_required&admin_consent=True&tenant=%T&state=%S",
		"admin_consent=True&tenant=%T&state=%S&error=consent_required",
		"tenant=%T&admin_consent=True&error=consent_required&error_description=" +
			"AADSTS90094%3A+admin+needed&state=%S",
		"admin_consent=True&error=access_denied&tenant=%T&state=%S",
		"admin_consent=True&error=permission_denied&tenant=%T&state=%S",
		"admin_consent=True&error=server_error&tenant=%T&state=%S",
		"admin_consent=True&error=interaction_required&tenant=%T&state=%S",
	}
	for _, f := range forms {
		state := consentState(t, admin, org)
		q := strings.NewReplacer("%T", tenantA, "%S", url.QueryEscape(state)).Replace(f)
		a := rawCallback(admin, q)
		wantStatus(t, a, http.StatusOK)
		if strings.Contains(text(a.Body), "Consent received") {
			t.Errorf("%s: the page says consent was received", f)
		}
		if strings.Contains(a.Body, `data-consent-next="`) {
			if next := attr(t, a.Body, "data-consent-next"); strings.Contains(next, "received") {
				t.Errorf("%s: the page sends the admin on as if consent was received", f)
			}
		}
	}
	if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != 0 {
		t.Errorf("%d consent-granted signals for callbacks that carry an error", n)
	}
	if n := len(e.signalsNamed(workflows.SignalConsentFailed)); n != len(forms) {
		t.Errorf("%d consent-failed signals, want %d", n, len(forms))
	}
}

// C6 at the portal: the tenant of the callback is passed on only as a
// claim for the workflow to verify. The portal binds no tenant itself,
// normalises its spelling, refuses what is not a tenant id, and a state
// works only for the session and organisation it was made for, once, a
// failure included.
func TestCasesC6TenantIsOnlyAClaim(t *testing.T) {
	e := newEnv(t)
	admin, org := e.consentReady("Acme Oy", "aino@acme.example")
	other, _ := e.consentReady("Beta Ab", "bo@beta.example")
	ctx := context.Background()

	t.Run("edited tenant is passed on unbound, in one spelling", func(t *testing.T) {
		state := consentState(t, admin, org)
		a := rawCallback(admin, "admin_consent=True&tenant="+strings.ToUpper(tenantA)+
			"&state="+url.QueryEscape(state))
		wantStatus(t, a, http.StatusOK)
		granted := e.signalsNamed(workflows.SignalConsentGranted)
		if len(granted) != 1 {
			t.Fatalf("consent-granted signals %+v", granted)
		}
		if sig := granted[0].Arg.(workflows.ConsentGrantedSignal); sig.TenantID != tenantA ||
			granted[0].WorkflowID != workflows.OnboardingID(org) {
			t.Errorf("signal %+v to %s, want tenant %s to the own onboarding", sig,
				granted[0].WorkflowID, tenantA)
		}
		if _, err := e.db.TenantByOrg(ctx, org); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the portal bound the claimed tenant itself (err %v): only the "+
				"workflow's verification may", err)
		}
	})

	t.Run("a tenant that is not an id", func(t *testing.T) {
		for _, bad := range []string{"contoso.onmicrosoft.com", "common", "organizations",
			tenantA + "0", "../" + tenantA} {
			state := consentState(t, admin, org)
			rawCallback(admin, "admin_consent=True&tenant="+url.QueryEscape(bad)+"&state="+
				url.QueryEscape(state))
		}
		if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != 1 {
			t.Errorf("%d consent-granted signals, want only the earlier one", n)
		}
	})

	t.Run("a state of another organisation", func(t *testing.T) {
		before := len(e.signals)
		state := consentState(t, admin, org)
		a := rawCallback(other, "admin_consent=True&tenant="+tenantA+"&state="+
			url.QueryEscape(state))
		wantStatus(t, a, http.StatusBadRequest)
		if strings.Contains(a.Body, "Acme Oy") {
			t.Error("the refusal shows the other organisation's name")
		}
		e.mu.Lock()
		after := e.signals[before:]
		e.mu.Unlock()
		if len(after) != 0 {
			t.Errorf("signals sent for a foreign state: %+v", after)
		}
		// The state was not spent by the stranger: its own session can
		// still use it.
		ok := rawCallback(admin, "admin_consent=True&tenant="+tenantA+"&state="+
			url.QueryEscape(state))
		wantStatus(t, ok, http.StatusOK)
	})

	t.Run("a state already used for a failure", func(t *testing.T) {
		state := consentState(t, admin, org)
		wantStatus(t, rawCallback(admin, "error=access_denied&error_description=AADSTS65004"+
			"&state="+url.QueryEscape(state)), http.StatusOK)
		granted := len(e.signalsNamed(workflows.SignalConsentGranted))
		a := rawCallback(admin, "admin_consent=True&tenant="+tenantA+"&state="+
			url.QueryEscape(state))
		wantStatus(t, a, http.StatusBadRequest)
		wantText(t, a, "It was already used")
		if n := len(e.signalsNamed(workflows.SignalConsentGranted)); n != granted {
			t.Error("a state spent on a cancel was accepted for a grant")
		}
	})
}

// C16 with the email and the name typed differently: the same address in
// other letter cases and with spaces around it, and the same organisation
// name in other cases and spacing, are "already registered".
func TestCasesC16SameEmailOrNameTypedDifferently(t *testing.T) {
	e := newEnv(t)
	e.register("Acme Oy", "aino@acme.example")

	for _, c := range []struct{ org, email string }{
		{"Acme Oy", " AINO@acme.example "},
		{"Acme Oy", "\tAino@Acme.Example\n"},
		{"Another Name Oy", "aino@ACME.EXAMPLE"},
		{"ACME OY", "someone.else@acme.example"},
		{"  acme   oy ", "third@acme.example"},
	} {
		b := e.browser()
		a := b.post("/register", "/register", registration(c.org, c.email))
		if a.Status != http.StatusConflict {
			t.Errorf("%q %q: status %d, want 409; page reads:\n%s", c.org, c.email, a.Status,
				text(a.Body))
			continue
		}
		wantText(t, a, "already registered")
	}
	if len(e.started) != 1 {
		t.Errorf("%d onboarding workflows, want 1", len(e.started))
	}
	if orgs, _ := e.db.Orgs(context.Background()); len(orgs) != 1 {
		t.Errorf("%d organisations stored, want 1", len(orgs))
	}
}

// C16 as a double click: the same form sent several times at once from one
// browser gives one registration and one workflow; every other answer is
// "already registered", none a server error.
func TestCasesC16ConcurrentDoubleSubmit(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := registration("Acme Oy", "aino@acme.example")
	form.Set("csrf", csrfOf(t, b.get("/register").Body))

	const n = 6
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/register",
				strings.NewReader(form.Encode()))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := b.c.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()

	created, dup := 0, 0
	for i, s := range statuses {
		switch {
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case s == http.StatusSeeOther:
			created++
		case s == http.StatusConflict:
			dup++
		default:
			t.Errorf("request %d answered %d, want 303 or 409", i, s)
		}
	}
	if created != 1 || dup != n-1 {
		t.Errorf("%d registered and %d already registered, want 1 and %d", created, dup, n-1)
	}
	if len(e.started) != 1 {
		t.Errorf("%d onboarding workflows started, want 1", len(e.started))
	}
	if orgs, _ := e.db.Orgs(context.Background()); len(orgs) != 1 {
		t.Errorf("%d organisations stored, want 1", len(orgs))
	}
}
