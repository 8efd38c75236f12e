package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

func (s *server) staffRoutes(r *gin.Engine) {
	r.GET("/staff/login", s.staffLoginForm)
	r.POST("/staff/login", s.staffLogin)
	r.POST("/staff/logout", s.staffLogout)

	g := r.Group("/staff", s.requireStaff)
	g.GET("", s.staffHome)
	g.GET("/orgs/:org", s.staffOrg)
	g.POST("/orgs/:org/approve", s.decide(true))
	g.POST("/orgs/:org/reject", s.decide(false))
	g.POST("/orgs/:org/sync/:action", s.syncAction)
}

// requireStaff lets a request through only with a staff session, and a
// state-changing one only with its CSRF token.
func (s *server) requireStaff(c *gin.Context) {
	sess, ok, err := s.session(c, store.SessionStaff)
	if err != nil {
		s.internal(c, "staff", "read your session", err)
		c.Abort()
		return
	}
	if !ok {
		c.Redirect(http.StatusSeeOther, "/staff/login")
		c.Abort()
		return
	}
	st, err := s.d.Store.Staff(c.Request.Context(), sess.AccountID)
	if err != nil {
		s.internal(c, "staff", "read your account", err)
		c.Abort()
		return
	}
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead &&
		!sameToken(sess.CSRFToken, sentCSRF(c)) {
		s.badCSRF(c, "staff", "/staff")
		c.Abort()
		return
	}
	c.Set(ctxSession, sess)
	c.Set(ctxStaff, st)
	c.Next()
}

func staffPage(c *gin.Context, title, nav string, data any) page {
	sess := c.MustGet(ctxSession).(store.Session)
	st := c.MustGet(ctxStaff).(store.Staff)
	who := st.Name
	if who == "" {
		who = st.Email
	}
	return page{Title: title, Area: "staff", Nav: nav, CSRF: sess.CSRFToken, Who: who,
		Data: data}
}

func (s *server) staffLoginForm(c *gin.Context) {
	s.showLogin(c, http.StatusOK, "staff", newForm())
}

func (s *server) staffLogin(c *gin.Context) {
	if !preSessionCSRFOK(c) {
		s.badCSRF(c, "staff", "/staff/login")
		return
	}
	f, cr, ok := s.readLogin(c, "staff")
	if !ok {
		return
	}

	st, err := s.d.Store.StaffByEmail(c.Request.Context(), cr.email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(c, "staff", "check your log-in", err)
		return
	}
	if !s.passwordMatches(st.PasswordHash, cr.password) {
		s.loginFailed(c, "staff", f, cr.email)
		return
	}

	s.throttle.reset(throttleKeys(c, "staff", cr.email)[0])
	_ = s.endSession(c, store.SessionStaff)
	if err := s.startSession(c, store.SessionStaff, st.ID); err != nil {
		s.internal(c, "staff", "log you in", err)
		return
	}
	s.log.Info("staff logged in", zap.String("staff", st.ID))
	c.Redirect(http.StatusSeeOther, "/staff")
}

func (s *server) staffLogout(c *gin.Context) {
	sess, ok, err := s.session(c, store.SessionStaff)
	if err != nil {
		s.internal(c, "staff", "log you out", err)
		return
	}
	if ok && !sameToken(sess.CSRFToken, sentCSRF(c)) {
		s.badCSRF(c, "staff", "/staff")
		return
	}
	if err := s.endSession(c, store.SessionStaff); err != nil {
		s.internal(c, "staff", "log you out", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/staff/login")
}

// orgRow is one organisation in the staff lists.
type orgRow struct {
	Org        store.Org
	WorkflowID string
	HistoryURL string
	// SharedPBX names the other organisations registered with the same
	// OneCloud customer id, so that staff see a duplicate before they
	// approve it.
	SharedPBX []string
}

// staffHomeView lists pending registrations first, then every organisation.
type staffHomeView struct {
	Pending []orgRow
	All     []orgRow
	// Forms holds the decision form of a pending registration that failed
	// validation, by organisation id, so its note and message show again.
	Forms map[string]*form
}

// historyURL links a workflow in the Temporal UI, or is empty without one.
func (s *server) historyURL(workflowID string) string {
	if s.d.TemporalUIURL == "" {
		return ""
	}
	ns := s.d.Namespace
	if ns == "" {
		ns = "default"
	}
	return s.d.TemporalUIURL + "/namespaces/" + url.PathEscape(ns) + "/workflows/" +
		url.PathEscape(workflowID)
}

func (s *server) row(o store.Org) orgRow {
	id := workflows.OnboardingID(o.ID)
	return orgRow{Org: o, WorkflowID: id, HistoryURL: s.historyURL(id)}
}

// staffNotices are the results of staff actions, named by the ?done=
// parameter of the redirect after them; only these are shown.
var staffNotices = map[string]string{
	"approved":     "Approved %s. Its admin can now connect Microsoft Teams.",
	"rejected":     "Rejected %s. Its admin sees the decision and your note.",
	"pause":        "Asked the presence sync of %s to pause.",
	"resume":       "Asked the presence sync of %s to resume.",
	"resync-users": "Asked the presence sync of %s to re-import its users.",
	"disconnect":   "Asked the presence sync of %s to disconnect and free every line.",
}

func (s *server) notice(c *gin.Context) string {
	tmpl, ok := staffNotices[c.Query("done")]
	if !ok {
		return ""
	}
	o, err := s.d.Store.Org(c.Request.Context(), c.Query("org"))
	if err != nil {
		return ""
	}
	return fmt.Sprintf(tmpl, o.Name)
}

func (s *server) staffHome(c *gin.Context) {
	s.showStaffHome(c, http.StatusOK, nil)
}

func (s *server) showStaffHome(c *gin.Context, status int, forms map[string]*form) {
	orgs, err := s.d.Store.Orgs(c.Request.Context())
	if err != nil {
		s.internal(c, "staff", "list the organisations", err)
		return
	}
	byPBX := map[string][]string{}
	for _, o := range orgs {
		byPBX[strings.ToLower(o.PBXOrg)] = append(byPBX[strings.ToLower(o.PBXOrg)], o.Name)
	}
	v := staffHomeView{Forms: forms}
	for _, o := range orgs {
		r := s.row(o)
		for _, name := range byPBX[strings.ToLower(o.PBXOrg)] {
			if name != o.Name {
				r.SharedPBX = append(r.SharedPBX, name)
			}
		}
		if workflows.Stage(o.Stage) == workflows.StageAwaitingApproval &&
			!s.decisionSent(c.Request.Context(), o) {
			v.Pending = append(v.Pending, r)
		}
		v.All = append(v.All, r)
	}
	p := staffPage(c, "Registrations and organisations", "home", v)
	p.Notice = s.notice(c)
	s.render(c, status, "staff_home", p)
}

// decisionSent reports whether staff already approved or rejected the
// registration since it entered its stage. The stored stage follows the
// workflow a moment after the signal, so without this the list shown right
// after a decision would still offer to decide it again.
func (s *server) decisionSent(ctx context.Context, o store.Org) bool {
	last, err := s.d.Store.AuditByOrg(ctx, o.ID, 1)
	if err != nil || len(last) == 0 {
		return false
	}
	a := last[0]
	return (a.Action == "approved" || a.Action == "rejected") && !a.At.Before(o.StageSince)
}

// decide approves or rejects a pending registration: it signals the
// organisation's Onboarding workflow with the staff member and the note.
func (s *server) decide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		st := c.MustGet(ctxStaff).(store.Staff)
		o, ok := s.staffOrgParam(c)
		if !ok {
			return
		}

		f := newForm()
		note := f.set("note", c.PostForm("note"), false)
		f.Values["action"] = "reject"
		if approve {
			f.Values["action"] = "approve"
		}
		f.note("note", note, !approve)
		if !f.Valid() {
			s.showStaffHome(c, http.StatusUnprocessableEntity, map[string]*form{o.ID: f})
			return
		}

		name, arg, done := workflows.SignalApprove, any(workflows.ApproveSignal{
			Staff: st.Email, Note: note}), "approved"
		if !approve {
			name, arg, done = workflows.SignalReject, workflows.RejectSignal{
				Staff: st.Email, Note: note}, "rejected"
		}
		if err := s.signal(ctx, workflows.OnboardingID(o.ID), name, arg); err != nil {
			s.log.Warn("signal decision", zap.String("org", o.ID), zap.String("signal", name),
				zap.Error(err))
			s.problem(c, http.StatusServiceUnavailable, "staff", problem{
				Heading: "The decision was not sent",
				Message: "OneSync could not reach " + o.Name + "'s onboarding workflow (" +
					err.Error() + "). Check it in the Temporal UI, then try again.",
				ActionURL: "/staff", ActionLabel: "Back to the registrations"})
			return
		}
		s.audit(ctx, "staff:"+st.ID, o.ID, done, note)
		s.log.Info("registration decided", zap.String("org", o.ID), zap.String("decision", done),
			zap.String("staff", st.ID))
		c.Redirect(http.StatusSeeOther, "/staff?done="+done+"&org="+url.QueryEscape(o.ID))
	}
}

// staffOrgView is one organisation's page for staff.
type staffOrgView struct {
	Org        orgRow
	Tenant     *store.Tenant
	Links      int
	Broken     int
	Sync       *workflows.PresenceSyncStatus
	SyncError  string
	SyncURL    string
	Audit      []store.Audit
	ConfirmErr string
}

func (s *server) staffOrg(c *gin.Context) {
	s.showStaffOrg(c, http.StatusOK, "")
}

func (s *server) showStaffOrg(c *gin.Context, status int, confirmErr string) {
	ctx := c.Request.Context()
	o, ok := s.staffOrgParam(c)
	if !ok {
		return
	}
	v := staffOrgView{Org: s.row(o), ConfirmErr: confirmErr}

	t, err := s.d.Store.TenantByOrg(ctx, o.ID)
	switch {
	case err == nil:
		v.Tenant = &t
		id := workflows.PresenceSyncID(t.ID)
		v.SyncURL = s.historyURL(id)
		if st, err := s.presenceStatus(ctx, t.ID); err != nil {
			v.SyncError = "The presence sync did not answer: " + err.Error()
		} else {
			v.Sync = &st
		}
	case !errors.Is(err, store.ErrNotFound):
		s.internal(c, "staff", "read the tenant", err)
		return
	}

	links, err := s.d.Store.LinksByOrg(ctx, o.ID)
	if err != nil {
		s.internal(c, "staff", "count the links", err)
		return
	}
	v.Links = len(links)
	for _, l := range links {
		if l.Broken {
			v.Broken++
		}
	}
	if v.Audit, err = s.d.Store.AuditByOrg(ctx, o.ID, 20); err != nil {
		s.log.Warn("read audit", zap.String("org", o.ID), zap.Error(err))
	}

	p := staffPage(c, o.Name, "orgs", v)
	p.Notice = s.notice(c)
	s.render(c, status, "staff_org", p)
}

// staffSyncActions are the PresenceSync signals staff may send.
var staffSyncActions = map[string]bool{
	"pause": true, "resume": true, "resync-users": true, "disconnect": true,
}

func (s *server) syncAction(c *gin.Context) {
	st := c.MustGet(ctxStaff).(store.Staff)
	action := c.Param("action")
	if !staffSyncActions[action] {
		s.notFound(c)
		return
	}
	o, ok := s.staffOrgParam(c)
	if !ok {
		return
	}

	back := "/staff/orgs/" + url.PathEscape(o.ID)
	s.sendSyncSignal(c, syncRequest{
		Area: "staff", Actor: "staff:" + st.ID, Org: o, Action: action, Back: back,
		Done: back + "?done=" + action + "&org=" + url.QueryEscape(o.ID),
		Unconfirmed: func(msg string) {
			s.showStaffOrg(c, http.StatusUnprocessableEntity, msg)
		},
	})
}

// staffOrgParam reads the organisation named by the URL for a staff page;
// when it cannot, it has already answered (404 or an error page).
func (s *server) staffOrgParam(c *gin.Context) (store.Org, bool) {
	o, err := s.d.Store.Org(c.Request.Context(), c.Param("org"))
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(c)
		return store.Org{}, false
	}
	if err != nil {
		s.internal(c, "staff", "read the organisation", err)
		return store.Org{}, false
	}
	return o, true
}
