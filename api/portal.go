package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// consentPath is the redirect URI of the admin consent. It carries no
// organisation: Entra only returns to URIs registered with the app.
const consentPath = "/teams/consent/callback"

// Keys of the values requireAdmin puts on the request context.
const (
	ctxSession = "session"
	ctxAdmin   = "admin"
	ctxOrg     = "org"
	ctxStaff   = "staff"
)

func (s *server) portalRoutes(r *gin.Engine) {
	r.GET("/", s.home)
	r.GET("/register", s.registerForm)
	r.POST("/register", s.register)
	r.GET("/login", s.loginForm)
	r.POST("/login", s.login)
	r.POST("/logout", s.logout)
	r.GET(consentPath, s.consentCallback)

	org := r.Group("/orgs/:org", s.requireAdmin)
	org.GET("", s.dashboard)
	org.GET("/settings/teams", s.teams)
	org.POST("/settings/teams/consent", s.startConsent)
	org.POST("/settings/teams/reconnect", s.reconnect)
	org.GET("/settings/extensions", s.extensions)
	org.POST("/settings/extensions", s.uploadExtensions)
	org.POST("/sync/:action", s.adminSyncAction)
	org.GET("/result", s.result)
	org.GET("/users", s.users)
}

// home sends a signed-in admin to their dashboard and anyone else to the
// start page.
func (s *server) home(c *gin.Context) {
	if sess, ok, err := s.session(c, store.SessionAdmin); err == nil && ok {
		if a, err := s.d.Store.Admin(c.Request.Context(), sess.AccountID); err == nil {
			c.Redirect(http.StatusSeeOther, "/orgs/"+a.OrgID)
			return
		}
	}
	s.render(c, http.StatusOK, "home", page{Title: "Presence sync for OneCloud", Area: "portal"})
}

// requireAdmin lets a request through only with an admin session whose
// organisation is the one in the URL; any other organisation's id answers
// 404, whether or not it exists. State-changing requests must carry the
// session's CSRF token.
func (s *server) requireAdmin(c *gin.Context) {
	sess, ok, err := s.session(c, store.SessionAdmin)
	if err != nil {
		s.internal(c, "portal", "read your session", err)
		c.Abort()
		return
	}
	if !ok {
		c.Redirect(http.StatusSeeOther, "/login")
		c.Abort()
		return
	}

	ctx := c.Request.Context()
	a, err := s.d.Store.Admin(ctx, sess.AccountID)
	if err != nil {
		s.internal(c, "portal", "read your account", err)
		c.Abort()
		return
	}
	if c.Param("org") != a.OrgID {
		s.notFound(c)
		c.Abort()
		return
	}
	o, err := s.d.Store.Org(ctx, a.OrgID)
	if err != nil {
		s.internal(c, "portal", "read your organisation", err)
		c.Abort()
		return
	}

	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead &&
		!sameToken(sess.CSRFToken, sentCSRF(c)) {
		s.badCSRF(c, "portal", "/orgs/"+a.OrgID)
		c.Abort()
		return
	}

	c.Set(ctxSession, sess)
	c.Set(ctxAdmin, a)
	c.Set(ctxOrg, o)
	c.Next()
}

// adminPage fills the parts of a page every signed-in portal page shares.
func adminPage(c *gin.Context, title, nav string, data any) page {
	sess := c.MustGet(ctxSession).(store.Session)
	a := c.MustGet(ctxAdmin).(store.Admin)
	return page{Title: title, Area: "portal", Nav: nav, CSRF: sess.CSRFToken, Who: a.Name,
		OrgID: a.OrgID, Data: data}
}

// registerView is the register page.
type registerView struct{ Form *form }

func (s *server) registerForm(c *gin.Context) {
	token, err := s.preSessionCSRF(c)
	if err != nil {
		s.internal(c, "portal", "prepare the form", err)
		return
	}
	s.render(c, http.StatusOK, "register", page{Title: "Register your organisation",
		Area: "portal", Nav: "register", CSRF: token, Data: registerView{Form: newForm()}})
}

func (s *server) register(c *gin.Context) {
	token, err := s.preSessionCSRF(c)
	if err != nil {
		s.internal(c, "portal", "prepare the form", err)
		return
	}
	if !preSessionCSRFOK(c) {
		s.badCSRF(c, "portal", "/register")
		return
	}

	f := newForm()
	orgName := f.set("org_name", c.PostForm("org_name"), false)
	pbxOrg := f.set("pbx_org", c.PostForm("pbx_org"), false)
	name := f.set("name", c.PostForm("name"), false)
	email := strings.ToLower(f.set("email", c.PostForm("email"), false))
	phone := f.set("phone", c.PostForm("phone"), false)
	pw := f.set("password", c.PostForm("password"), true)
	confirm := f.set("password_confirm", c.PostForm("password_confirm"), true)

	f.text("org_name", orgName, "organisation's name", maxName)
	f.pbxOrg("pbx_org", pbxOrg)
	f.text("name", name, "name of the admin", maxName)
	f.email("email", email)
	f.phone("phone", phone)
	f.newPassword("password", pw, "password_confirm", confirm)

	show := func(status int) {
		s.render(c, status, "register", page{Title: "Register your organisation",
			Area: "portal", Nav: "register", CSRF: token, Data: registerView{Form: f}})
	}
	if !f.Valid() {
		f.Error = "Some fields need attention: see the messages next to them."
		show(http.StatusUnprocessableEntity)
		return
	}

	hash, err := hashPassword(pw)
	if err != nil {
		s.internal(c, "portal", "save your registration", err)
		return
	}
	orgID, err := randomID()
	if err != nil {
		s.internal(c, "portal", "save your registration", err)
		return
	}
	adminID, err := randomID()
	if err != nil {
		s.internal(c, "portal", "save your registration", err)
		return
	}

	now := s.now().UTC()
	o := store.Org{ID: orgID, Name: orgName, PBXOrg: pbxOrg,
		Stage: string(workflows.StageAwaitingApproval), StageSince: now, CreatedAt: now}
	a := store.Admin{ID: adminID, OrgID: orgID, Name: name, Email: email, Phone: phone,
		PasswordHash: string(hash), CreatedAt: now}

	ctx := c.Request.Context()
	err = s.d.Store.CreateOrgWithAdmin(ctx, o, a)
	if errors.Is(err, store.ErrDuplicate) {
		f.Error = "This organisation or this email address is already registered. " +
			"Log in instead; if you do not know the password, contact Setera support."
		f.fail("email", "Already registered: log in with this address instead.")
		show(http.StatusConflict)
		return
	}
	if err != nil {
		s.internal(c, "portal", "save your registration", err)
		return
	}
	s.audit(ctx, "admin:"+adminID, orgID, "registered", "")

	if err := s.startOnboarding(ctx, o); err != nil && !errors.Is(err, errAlreadyStarted) {
		// The registration is stored; the dashboard starts the workflow
		// again when it finds none, so the admin loses nothing.
		s.log.Error("start onboarding", zap.String("org", orgID), zap.Error(err))
	}
	s.log.Info("organisation registered", zap.String("org", orgID))

	if err := s.startSession(c, store.SessionAdmin, adminID); err != nil {
		s.internal(c, "portal", "log you in", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/orgs/"+orgID)
}

// loginView is the log-in page of the portal or the staff pages.
type loginView struct {
	Form   *form
	Action string
	Intro  string
}

func (s *server) loginForm(c *gin.Context) {
	s.showLogin(c, http.StatusOK, "portal", newForm())
}

func (s *server) showLogin(c *gin.Context, status int, area string, f *form) {
	token, err := s.preSessionCSRF(c)
	if err != nil {
		s.internal(c, area, "prepare the form", err)
		return
	}
	v := loginView{Form: f, Action: "/login",
		Intro: "Log in with the email address and password you registered with."}
	title := "Log in"
	if area == "staff" {
		v.Action = "/staff/login"
		v.Intro = "For Setera staff. Accounts are made with `onesync staff add`."
		title = "Staff log in"
	}
	s.render(c, status, "login", page{Title: title, Area: area, Nav: "login", CSRF: token,
		Data: v})
}

// credentials is a checked log-in attempt.
type credentials struct{ email, password string }

// readLogin validates a log-in form and applies the throttle. It returns
// false after it has shown the form again.
func (s *server) readLogin(c *gin.Context, area string) (*form, credentials, bool) {
	f := newForm()
	email := strings.ToLower(f.set("email", c.PostForm("email"), false))
	pw := f.set("password", c.PostForm("password"), true)

	f.email("email", email)
	switch {
	case pw == "":
		f.fail("password", "Enter your password.")
	case len(pw) > maxPassword:
		f.fail("password", "The password is too long: use at most "+
			strconv.Itoa(maxPassword)+" bytes.")
	}
	if !f.Valid() {
		s.showLogin(c, http.StatusUnprocessableEntity, area, f)
		return f, credentials{}, false
	}

	if wait := s.throttle.wait(s.now(), throttleKeys(c, area, email)...); wait > 0 {
		minutes := int((wait + time.Minute - 1) / time.Minute)
		f.Error = "Too many failed log-ins. For your safety, wait " +
			plural(minutes, "minute") + " and then try again."
		s.showLogin(c, http.StatusTooManyRequests, area, f)
		return f, credentials{}, false
	}
	return f, credentials{email: email, password: pw}, true
}

func throttleKeys(c *gin.Context, area, email string) []string {
	return []string{area + ":account:" + email, area + ":addr:" + c.ClientIP()}
}

// loginFailed counts the failure and shows the form again. The message is
// the same for an unknown email and a wrong password.
func (s *server) loginFailed(c *gin.Context, area string, f *form, email string) {
	s.throttle.fail(s.now(), throttleKeys(c, area, email)...)
	f.Error = "The email address or the password is wrong. Check both and try again."
	s.showLogin(c, http.StatusUnauthorized, area, f)
}

func (s *server) login(c *gin.Context) {
	if !preSessionCSRFOK(c) {
		s.badCSRF(c, "portal", "/login")
		return
	}
	f, cr, ok := s.readLogin(c, "portal")
	if !ok {
		return
	}

	a, err := s.d.Store.AdminByEmail(c.Request.Context(), cr.email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(c, "portal", "check your log-in", err)
		return
	}
	if !s.passwordMatches(a.PasswordHash, cr.password) {
		s.loginFailed(c, "portal", f, cr.email)
		return
	}

	s.throttle.reset(throttleKeys(c, "portal", cr.email)[0])
	_ = s.endSession(c, store.SessionAdmin)
	if err := s.startSession(c, store.SessionAdmin, a.ID); err != nil {
		s.internal(c, "portal", "log you in", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/orgs/"+a.OrgID)
}

func (s *server) logout(c *gin.Context) {
	sess, ok, err := s.session(c, store.SessionAdmin)
	if err != nil {
		s.internal(c, "portal", "log you out", err)
		return
	}
	if ok && !sameToken(sess.CSRFToken, sentCSRF(c)) {
		s.badCSRF(c, "portal", "/")
		return
	}
	if err := s.endSession(c, store.SessionAdmin); err != nil {
		s.internal(c, "portal", "log you out", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/login?out=1")
}

// dashboardView is the dashboard: the stepper, the organisation and, once
// Teams is connected, the presence sync's state with its controls.
type dashboardView struct {
	Org     store.Org
	Status  workflows.OnboardingStatus
	Journey journey
	Live    bool
	Sync    *syncView
}

func (s *server) dashboard(c *gin.Context) {
	s.showDashboard(c, http.StatusOK, "")
}

// showDashboard renders the dashboard; confirmErr is the message beside
// the disconnect box when a disconnect was not confirmed.
func (s *server) showDashboard(c *gin.Context, status int, confirmErr string) {
	ctx := c.Request.Context()
	o := c.MustGet(ctxOrg).(store.Org)
	st, live := s.onboardingStatus(ctx, o)

	activated := 0
	if st.Stage == workflows.StageSyncing {
		activated = s.resultFor(c, o, st).Result.Activated
	}
	j := journeyFor(st, o.ID, activated)

	v := dashboardView{Org: o, Status: st, Journey: j, Live: live}
	if st.Stage == workflows.StageSyncing {
		cn, err := s.connectionOf(ctx, o.ID)
		if err != nil {
			s.internal(c, "portal", "read your Teams connection", err)
			return
		}
		switch {
		case cn != nil && cn.Ended:
			v.Journey = endedJourney(j, cn, o.ID)
		case cn != nil:
			v.Sync = newSyncView(cn, confirmErr)
			v.Sync.Linked = s.activatedFromStore(c, o.ID)
		}
	}

	p := adminPage(c, "Dashboard", "dashboard", v)
	p.Notice = portalNotices[c.Query("done")]
	if v.Journey.Waiting {
		p.Refresh = 5
	}
	s.render(c, status, "dashboard", p)
}

// activatedFromStore counts the organisation's working links, for when the
// workflow can no longer be asked.
func (s *server) activatedFromStore(c *gin.Context, orgID string) int {
	links, err := s.d.Store.LinksByOrg(c.Request.Context(), orgID)
	if err != nil {
		s.log.Warn("count links", zap.String("org", orgID), zap.Error(err))
		return 0
	}
	n := 0
	for _, l := range links {
		if !l.Broken {
			n++
		}
	}
	return n
}

// teamsView is Settings > Teams.
type teamsView struct {
	Org     store.Org
	Status  workflows.OnboardingStatus
	Journey journey
	// CanConnect shows the consent button.
	CanConnect bool
	// Outcome is what the consent callback just reported, in words.
	Outcome     string
	OutcomeKind string // success or problem
	Result      *resultView

	// Conn is the Teams connection once a tenant was bound; nil before.
	Conn *connection
	// CanReconnect shows "Connect Teams again"; ReconnectBlocked says why
	// it is not offered while the connection has ended.
	CanReconnect     bool
	ReconnectBlocked string

	// Directory says where the import finds the extensions
	// (DirectoryOneCloud or DirectoryCSV) and, for an uploaded list, how
	// many it holds.
	Directory  string
	Extensions int
}

// consentOutcomes are the messages the consent callback hands to Settings
// > Teams through its ?consent= parameter. Only these values are shown.
var consentOutcomes = map[string]string{
	"received": "Microsoft confirmed your consent. OneSync is now checking it with " +
		"Microsoft and importing your users; this page refreshes itself.",
	string(graph.ConsentCancelled): "Consent was cancelled, so OneSync has no access to " +
		"your tenant. Press the button to try again when you are ready.",
	string(graph.ConsentDenied): "Microsoft did not allow the consent: the account you " +
		"signed in with may not grant it. Sign in as a Global Administrator or a " +
		"Privileged Role Administrator and press the button again.",
	string(graph.ConsentOther): "Microsoft did not complete the consent. Press the button " +
		"to try again; if it keeps failing, contact Setera support.",
}

// receivedWait is how long Settings > Teams keeps refreshing after a
// consent before it says that the check takes longer than it should.
const receivedWait = 2 * time.Minute

func (s *server) teams(c *gin.Context) {
	ctx := c.Request.Context()
	o := c.MustGet(ctxOrg).(store.Org)
	st, _ := s.onboardingStatus(ctx, o)

	v := teamsView{Org: o, Status: st, Journey: journeyFor(st, o.ID, 0),
		Directory: s.d.DirectorySource}
	cn, err := s.connectionOf(ctx, o.ID)
	if err != nil {
		s.internal(c, "portal", "read your Teams connection", err)
		return
	}
	v.Conn = cn
	if v.Directory == DirectoryCSV {
		exts, err := s.d.Store.Extensions(ctx, o.ID)
		if err != nil {
			s.internal(c, "portal", "read your extension list", err)
			return
		}
		v.Extensions = len(exts)
	}
	outcome := c.Query("consent")
	if msg, ok := consentOutcomes[outcome]; ok {
		v.Outcome, v.OutcomeKind = msg, "problem"
		if outcome == "received" {
			v.OutcomeKind = "success"
		} else {
			// The outcome already says what failed; the workflow's copy of
			// the same failure would only repeat it.
			v.Journey.Problem = ""
		}
	}

	refresh := 0
	switch st.Stage {
	case workflows.StageAwaitingConsent:
		v.CanConnect = true
		if outcome == "received" {
			at, _ := strconv.ParseInt(c.Query("at"), 10, 64)
			sent := time.Unix(at, 0)
			if !st.StageSince.After(sent) && s.now().Sub(sent) < receivedWait {
				// The workflow has not acted on the consent yet.
				refresh = 5
				v.Journey.Problem = ""
			} else if v.Journey.Problem == "" {
				v.Outcome = "Checking the consent takes longer than it should. Wait a " +
					"minute and reload this page; if nothing changes, contact Setera support."
			} else {
				v.Outcome = ""
			}
		}
	case workflows.StageImporting:
		refresh = 5
	case workflows.StageSyncing:
		v.Outcome = ""
		if cn != nil && cn.Ended {
			msg, err := s.reconnectBlocker(ctx, cn, o.ID)
			if err != nil {
				s.log.Warn("check reconnect", zap.String("org", o.ID), zap.Error(err))
				msg = "OneSync could not check just now whether Teams can be connected " +
					"again. Reload this page in a minute."
			}
			v.CanReconnect, v.ReconnectBlocked = msg == "", msg
		} else {
			v.Result = s.resultFor(c, o, st)
		}
	}

	if refresh > 0 {
		// Someone else acts now: no button to press twice meanwhile.
		v.CanConnect = false
	}
	p := adminPage(c, "Settings > Teams", "teams", v)
	p.Notice = portalNotices[c.Query("done")]
	p.Refresh = refresh
	s.render(c, http.StatusOK, "teams", p)
}

// startConsent creates a single-use consent state for this organisation
// and session and sends the browser to Microsoft's admin consent page. The
// consent script asks for JSON and opens the URL in a popup; without
// JavaScript the form's POST is answered with a redirect.
func (s *server) startConsent(c *gin.Context) {
	o := c.MustGet(ctxOrg).(store.Org)
	sess := c.MustGet(ctxSession).(store.Session)
	a := c.MustGet(ctxAdmin).(store.Admin)
	ctx := c.Request.Context()
	wantsJSON := strings.Contains(c.GetHeader("Accept"), "application/json")

	st, _ := s.onboardingStatus(ctx, o)
	if st.Stage != workflows.StageAwaitingConsent {
		msg := "Teams can be connected once Setera has approved your organisation, and " +
			"only while no connection is being set up. Your dashboard shows where you stand."
		if wantsJSON {
			c.JSON(http.StatusConflict, gin.H{"error": msg})
			return
		}
		s.problem(c, http.StatusConflict, "portal", problem{Heading: "Teams cannot be connected now",
			Message: msg, ActionURL: "/orgs/" + o.ID, ActionLabel: "Open the dashboard"})
		return
	}

	state, err := randomToken()
	if err != nil {
		s.internal(c, "portal", "prepare the Microsoft sign-in", err)
		return
	}
	now := s.now()
	err = s.d.Store.CreateConsentRequest(ctx, store.ConsentRequest{State: digest(state),
		OrgID: o.ID, SessionID: sess.ID, CreatedAt: now, ExpiresAt: now.Add(consentTTL)})
	if err != nil {
		s.internal(c, "portal", "prepare the Microsoft sign-in", err)
		return
	}

	cfg := graph.Config{ClientID: s.d.ClientID, Authority: s.d.ConsentAuthority}
	target, err := cfg.AdminConsentURL(s.d.PublicURL+consentPath, state)
	if err != nil {
		s.internal(c, "portal", "prepare the Microsoft sign-in", err)
		return
	}
	s.audit(ctx, "admin:"+a.ID, o.ID, "consent-started", "")

	if wantsJSON {
		c.JSON(http.StatusOK, gin.H{"url": target})
		return
	}
	c.Redirect(http.StatusSeeOther, target)
}

// callbackView is the page the consent returns to.
type callbackView struct {
	Heading string
	Message string
	Success bool
	// Next is Settings > Teams with the outcome; the page's script sends
	// the opener (or, in a full redirect, this window) there.
	Next string
}

// consentCallback is where Microsoft sends the admin back. The state is
// checked first: an unknown, replayed or foreign state is refused and no
// signal is sent. Then an error parameter always wins; only a clean
// success signals consent-granted, and the workflow verifies the tenant
// for real before it trusts it.
func (s *server) consentCallback(c *gin.Context) {
	ctx := c.Request.Context()
	sess, ok, err := s.session(c, store.SessionAdmin)
	if err != nil {
		s.internal(c, "portal", "read your session", err)
		return
	}
	if !ok {
		s.problem(c, http.StatusUnauthorized, "portal", problem{
			Heading: "Log in to finish connecting Teams",
			Message: "Your OneSync session ended while you were at Microsoft. Log in, open " +
				"Settings > Teams and press the button again.",
			ActionURL: "/login", ActionLabel: "Log in"})
		return
	}
	a, err := s.d.Store.Admin(ctx, sess.AccountID)
	if err != nil {
		s.internal(c, "portal", "read your account", err)
		return
	}
	teamsURL := "/orgs/" + a.OrgID + "/settings/teams"

	q := c.Request.URL.Query()
	state := q.Get("state")
	refused := func(msg string) {
		s.problem(c, http.StatusBadRequest, "portal", problem{
			Heading: "This answer from Microsoft cannot be used",
			Message: msg + " Nothing was changed. Open Settings > Teams and press the " +
				"button again to start a fresh sign-in.",
			ActionURL: teamsURL, ActionLabel: "Try again from Settings > Teams"})
	}
	if state == "" || len(state) > 100 {
		refused("It carries no valid sign-in reference.")
		return
	}
	_, err = s.d.Store.UseConsentRequest(ctx, digest(state), a.OrgID, sess.ID, s.now())
	switch {
	case errors.Is(err, store.ErrStateUsed):
		refused("It was already used, or it is more than 10 minutes old.")
		return
	case errors.Is(err, store.ErrNotFound):
		refused("It does not belong to this browser session.")
		return
	case err != nil:
		s.internal(c, "portal", "check Microsoft's answer", err)
		return
	}

	wf := workflows.OnboardingID(a.OrgID)
	cb, perr := graph.ParseConsentCallback(q)
	var cerr *graph.ConsentError
	if errors.As(perr, &cerr) {
		sig := workflows.ConsentFailedSignal{Kind: string(cerr.Kind), Code: cerr.Code,
			Description: clip(firstLine(cerr.Description), 300)}
		if err := s.signal(ctx, wf, workflows.SignalConsentFailed, sig); err != nil {
			s.log.Warn("signal consent failed", zap.String("org", a.OrgID), zap.Error(err))
		}
		s.audit(ctx, "admin:"+a.ID, a.OrgID, "consent-failed", string(cerr.Kind)+" "+cerr.Code)

		v := callbackView{Next: teamsURL + "?consent=" + string(cerr.Kind),
			Message: consentOutcomes[string(cerr.Kind)]}
		switch cerr.Kind {
		case graph.ConsentCancelled:
			v.Heading = "Consent was cancelled"
		case graph.ConsentDenied:
			v.Heading = "Microsoft did not allow the consent"
		default:
			v.Heading = "Consent failed"
		}
		if cerr.Code != "" {
			v.Message += " (Microsoft's code: " + cerr.Code + ")"
		}
		s.render(c, http.StatusOK, "callback", page{Title: v.Heading, Area: "portal",
			OrgID: a.OrgID, Who: a.Name, CSRF: sess.CSRFToken, Data: v})
		return
	}
	if perr != nil {
		s.internal(c, "portal", "read Microsoft's answer", perr)
		return
	}

	sig := workflows.ConsentGrantedSignal{TenantID: cb.Tenant, By: a.ID}
	if err := s.signal(ctx, wf, workflows.SignalConsentGranted, sig); err != nil {
		s.log.Error("signal consent granted", zap.String("org", a.OrgID), zap.Error(err))
		s.problem(c, http.StatusServiceUnavailable, "portal", problem{
			Heading: "OneSync could not pass your consent on",
			Message: "Microsoft accepted the consent, but OneSync could not record it just " +
				"now. Wait a minute, then press the button in Settings > Teams again; " +
				"Microsoft will not ask you to accept twice.",
			ActionURL: teamsURL, ActionLabel: "Back to Settings > Teams"})
		return
	}
	s.audit(ctx, "admin:"+a.ID, a.OrgID, "consent-granted", "tenant "+cb.Tenant)
	s.log.Info("consent received", zap.String("org", a.OrgID), zap.String("tenant", cb.Tenant))

	v := callbackView{Success: true,
		Heading: "Consent received",
		Message: "Microsoft confirmed your consent. OneSync now checks it and imports your " +
			"users; Settings > Teams shows the result.",
		Next: teamsURL + "?consent=received&at=" + strconv.FormatInt(s.now().Unix(), 10)}
	p := page{Title: v.Heading, Area: "portal", OrgID: a.OrgID, Who: a.Name,
		CSRF: sess.CSRFToken, Data: v}
	s.render(c, http.StatusOK, "callback", p)
}

// resultView is the import result: "N users have been activated" and the
// people OneSync could not match.
type resultView struct {
	Result workflows.ImportResult
	// Complete is false when the counts come from the store because the
	// workflow could not be asked; the lists are then unknown.
	Complete bool
}

func (s *server) resultFor(c *gin.Context, o store.Org, st workflows.OnboardingStatus) *resultView {
	if st.Import != nil {
		return &resultView{Result: *st.Import, Complete: true}
	}
	r, err := s.workflowResult(c, o.ID)
	if err == nil {
		return &resultView{Result: r, Complete: true}
	}
	s.log.Warn("read onboarding result", zap.String("org", o.ID), zap.Error(err))
	return &resultView{Result: workflows.ImportResult{Activated: s.activatedFromStore(c, o.ID)}}
}

// workflowResult reads a finished Onboarding's result, the import counts,
// for when its status query cannot be answered.
func (s *server) workflowResult(c *gin.Context, orgID string) (workflows.ImportResult, error) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()

	var r workflows.ImportResult
	run := s.d.Temporal.GetWorkflow(ctx, workflows.OnboardingID(orgID), "")
	if err := run.Get(ctx, &r); err != nil {
		return r, fmt.Errorf("onboarding result of %s: %w", orgID, err)
	}
	return r, nil
}

func (s *server) result(c *gin.Context) {
	o := c.MustGet(ctxOrg).(store.Org)
	st, _ := s.onboardingStatus(c.Request.Context(), o)
	if st.Stage != workflows.StageSyncing {
		c.Redirect(http.StatusSeeOther, "/orgs/"+o.ID)
		return
	}
	r := s.resultFor(c, o, st)
	s.render(c, http.StatusOK, "result",
		adminPage(c, plural(r.Result.Activated, "user")+" activated", "result", r))
}

// usersView is the users page.
type usersView struct {
	Links  []store.Link
	Broken int
}

func (s *server) users(c *gin.Context) {
	o := c.MustGet(ctxOrg).(store.Org)
	links, err := s.d.Store.LinksByOrg(c.Request.Context(), o.ID)
	if err != nil {
		s.internal(c, "portal", "list your users", err)
		return
	}
	v := usersView{Links: links}
	for _, l := range links {
		if l.Broken {
			v.Broken++
		}
	}
	s.render(c, http.StatusOK, "users", adminPage(c, "Users", "users", v))
}

// clip cuts s to at most n runes, for text that came from outside.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
