package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// connection is how an organisation's Teams connection stands once a
// tenant was bound to it: the tenant in the store and, while it is active,
// what its PresenceSync says.
type connection struct {
	Tenant store.Tenant
	// Sync is the presence sync's status query answer; nil when it did not
	// answer, SyncError then says why.
	Sync      *workflows.PresenceSyncStatus
	SyncError string

	// Ended is true once the tenant was revoked or disconnected: the sync
	// has stopped and every line was set back to available.
	Ended bool
	// Revoked is true when the customer removed OneSync in Entra ID.
	Revoked bool
	// EndedAt is when the sync ended, as recorded with the tenant.
	EndedAt time.Time
	// Summary says in one phrase why the connection ended, for "Teams is
	// disconnected: <Summary>".
	Summary string
	// Detail is the technical reason recorded with the tenant.
	Detail string
}

// connectionOf reads the organisation's connection; nil when it never
// bound a tenant. The sync is asked only while the tenant is active; a
// sync that reports revoked or disconnected counts as ended even before
// the store has caught up.
func (s *server) connectionOf(ctx context.Context, orgID string) (*connection, error) {
	t, err := s.d.Store.TenantByOrg(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant of %s: %w", orgID, err)
	}

	cn := &connection{Tenant: t, EndedAt: t.UpdatedAt, Detail: t.Reason}
	switch t.State {
	case store.TenantRevoked:
		cn.Ended, cn.Revoked = true, true
	case store.TenantDisconnected:
		cn.Ended = true
	default:
		st, err := s.presenceStatus(ctx, t.ID)
		if err != nil {
			s.log.Warn("query presence sync", zap.String("org", orgID),
				zap.String("tenant", t.ID), zap.Error(err))
			cn.SyncError = "The presence sync did not answer just now, so its state is " +
				"not known. Reload the page in a minute."
			break
		}
		cn.Sync = &st
		switch st.State {
		case workflows.SyncRevoked:
			cn.Ended, cn.Revoked, cn.EndedAt, cn.Detail = true, true, st.Since, st.LastError
		case workflows.SyncDisconnected:
			cn.Ended, cn.EndedAt, cn.Detail = true, st.Since, st.LastError
		}
	}

	if cn.Revoked {
		cn.Summary = "Teams access was removed in Entra ID on " + stamp(cn.EndedAt)
	} else if cn.Ended {
		cn.Summary = "disconnected on " + stamp(cn.EndedAt)
		if cn.Detail != "" && cn.Detail != "disconnected on request" {
			cn.Summary += " (" + cn.Detail + ")"
		}
	}
	return cn, nil
}

// stamp formats an instant as the pages do, for sentences built in Go.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown date"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// endedJourney is the stepper of an organisation whose sync has ended: the
// last step failed, and the admin reads what happened and what to do.
func endedJourney(j journey, cn *connection, orgID string) journey {
	if cn.Revoked {
		j.Heading = "Teams access was removed"
		j.Next = "Teams access was removed in Entra ID on " + stamp(cn.EndedAt) +
			"; every line was set back to available. Connect again under Settings > Teams."
	} else {
		j.Heading = "Teams is disconnected"
		j.Next = "Teams was disconnected on " + stamp(cn.EndedAt) + "; every line was set " +
			"back to available. Connect again under Settings > Teams."
	}
	j.Who = "You"
	j.Waiting = false
	j.ActionURL, j.ActionLabel = "/orgs/"+orgID+"/settings/teams", "Open Settings > Teams"
	if n := len(j.Steps); n > 0 {
		j.Steps[n-1].State = "failed"
	}
	return j
}

// reconnectBlocker says why the organisation cannot connect Teams again
// now, or "" when it can: its tenant must be revoked or disconnected and
// its previous onboarding must have ended.
func (s *server) reconnectBlocker(ctx context.Context, cn *connection, orgID string) (
	string, error) {
	switch {
	case cn == nil:
		return "Teams was never connected, so there is nothing to connect again. Connect " +
			"it under Settings > Teams once Setera has approved your organisation.", nil
	case !cn.Ended:
		return "Teams is connected and syncing, so there is nothing to connect again. To " +
			"connect another way, disconnect it on the dashboard first.", nil
	}
	running, err := s.onboardingRunning(ctx, orgID)
	if err != nil {
		return "", err
	}
	if running {
		return "Connecting Teams again has already started: finish it under Settings > " +
			"Teams with the consent button.", nil
	}
	return "", nil
}

// reconnect starts the Onboarding workflow again, in awaiting-consent,
// after the organisation's tenant was revoked or disconnected.
func (s *server) reconnect(c *gin.Context) {
	ctx := c.Request.Context()
	o := c.MustGet(ctxOrg).(store.Org)
	a := c.MustGet(ctxAdmin).(store.Admin)
	teamsURL := "/orgs/" + o.ID + "/settings/teams"
	refused := func(msg string) {
		s.problem(c, http.StatusConflict, "portal", problem{
			Heading: "Teams cannot be connected again now", Message: msg,
			ActionURL: teamsURL, ActionLabel: "Back to Settings > Teams"})
	}
	unreachable := func(err error) {
		s.log.Warn("reconnect", zap.String("org", o.ID), zap.Error(err))
		s.problem(c, http.StatusServiceUnavailable, "portal", problem{
			Heading: "OneSync could not start connecting Teams again",
			Message: "OneSync could not reach its workflow engine just now. Nothing was " +
				"changed. Wait a minute and press the button again; if it keeps failing, " +
				"contact Setera support.",
			ActionURL: teamsURL, ActionLabel: "Back to Settings > Teams"})
	}

	cn, err := s.connectionOf(ctx, o.ID)
	if err != nil {
		s.internal(c, "portal", "read your Teams connection", err)
		return
	}
	msg, err := s.reconnectBlocker(ctx, cn, o.ID)
	if err != nil {
		unreachable(err)
		return
	}
	if msg != "" {
		refused(msg)
		return
	}

	err = s.startReconnect(ctx, o)
	if errors.Is(err, errAlreadyStarted) {
		refused("Connecting Teams again has already started: finish it under Settings > " +
			"Teams with the consent button.")
		return
	}
	if err != nil {
		unreachable(err)
		return
	}
	s.audit(ctx, "admin:"+a.ID, o.ID, "reconnect-started", "tenant "+cn.Tenant.ID+" was "+
		cn.Tenant.State)
	s.log.Info("reconnect started", zap.String("org", o.ID), zap.String("tenant", cn.Tenant.ID))
	c.Redirect(http.StatusSeeOther, teamsURL+"?done=reconnect")
}

// adminSyncActions are the PresenceSync signals an admin may send for
// their own organisation.
var adminSyncActions = map[string]bool{"pause": true, "resume": true, "disconnect": true}

// adminSyncAction pauses, resumes or disconnects the organisation's sync
// from the dashboard.
func (s *server) adminSyncAction(c *gin.Context) {
	o := c.MustGet(ctxOrg).(store.Org)
	a := c.MustGet(ctxAdmin).(store.Admin)
	action := c.Param("action")
	if !adminSyncActions[action] {
		s.notFound(c)
		return
	}
	back := "/orgs/" + o.ID
	s.sendSyncSignal(c, syncRequest{
		Area: "portal", Actor: "admin:" + a.ID, Org: o, Action: action, Back: back,
		Done: back + "?done=" + action,
		Unconfirmed: func(msg string) {
			s.showDashboard(c, http.StatusUnprocessableEntity, msg)
		},
	})
}

// syncSignals maps each sync action of the pages to its PresenceSync
// signal.
var syncSignals = map[string]string{
	"pause":        workflows.SignalPause,
	"resume":       workflows.SignalResume,
	"resync-users": workflows.SignalResyncUsers,
	"disconnect":   workflows.SignalDisconnect,
}

// syncRequest is one request to signal an organisation's presence sync.
// The staff pages and the portal both send theirs through sendSyncSignal.
type syncRequest struct {
	Area   string // "staff" or "portal": picks the look of error pages
	Actor  string // who asks, for the audit trail: "staff:<id>" or "admin:<id>"
	Org    store.Org
	Action string // a key of syncSignals
	Back   string // the page the request came from
	Done   string // where the browser goes once the signal was sent
	// Unconfirmed shows the page again with msg beside the disconnect box.
	Unconfirmed func(msg string)
}

// sendSyncSignal checks a sync request (a disconnect must be confirmed, the
// tenant must be connected), sends the signal to presence-sync:<tenant>,
// records it and redirects to r.Done; otherwise it shows what went wrong.
func (s *server) sendSyncSignal(c *gin.Context, r syncRequest) {
	ctx := c.Request.Context()
	name, ok := syncSignals[r.Action]
	if !ok {
		s.notFound(c)
		return
	}
	if r.Action == "disconnect" && c.PostForm("confirm") != "yes" {
		r.Unconfirmed("Tick the box to confirm: disconnecting stops the sync and frees every line.")
		return
	}
	refused := func(heading, msg string) {
		s.problem(c, http.StatusConflict, r.Area, problem{Heading: heading, Message: msg,
			ActionURL: r.Back, ActionLabel: "Go back"})
	}

	t, err := s.d.Store.TenantByOrg(ctx, r.Org.ID)
	if errors.Is(err, store.ErrNotFound) {
		refused("No Teams tenant is connected", r.Org.Name+" has not connected Microsoft "+
			"Teams yet, so there is no sync to control.")
		return
	}
	if err != nil {
		s.internal(c, r.Area, "read the tenant", err)
		return
	}
	if t.State != store.TenantActive {
		refused("The presence sync has ended", "The Teams connection of "+r.Org.Name+
			" is "+t.State+", so its sync no longer runs and every line was set back to "+
			"available. It can be connected again under Settings > Teams.")
		return
	}

	sig := workflows.SyncSignal{SentAt: s.now(), By: r.Actor}
	if err := s.signal(ctx, workflows.PresenceSyncID(t.ID), name, sig); err != nil {
		s.log.Warn("signal presence sync", zap.String("org", r.Org.ID),
			zap.String("tenant", t.ID), zap.String("signal", name), zap.Error(err))
		msg := "OneSync could not reach the presence sync of " + r.Org.Name + ". Nothing " +
			"was changed. Wait a minute and try again; if it keeps failing, contact " +
			"Setera support."
		if r.Area == "staff" {
			msg = "OneSync could not reach the presence sync of " + r.Org.Name + " (" +
				err.Error() + "). It may have ended; check it in the Temporal UI."
		}
		s.problem(c, http.StatusServiceUnavailable, r.Area, problem{
			Heading: "The request was not sent", Message: msg,
			ActionURL: r.Back, ActionLabel: "Go back"})
		return
	}
	s.audit(ctx, r.Actor, r.Org.ID, "sync-"+r.Action, "tenant "+t.ID)
	s.log.Info("presence sync signalled", zap.String("org", r.Org.ID),
		zap.String("tenant", t.ID), zap.String("signal", name), zap.String("by", r.Actor))
	c.Redirect(http.StatusSeeOther, r.Done)
}

// portalNotices are the results of an admin's actions, named by the
// ?done= parameter of the redirect after them; only these are shown.
var portalNotices = map[string]string{
	"pause": "Asked the presence sync to pause: OneSync leaves every line as it is " +
		"until you resume.",
	"resume": "Asked the presence sync to resume: lines follow Teams again within seconds.",
	"disconnect": "Asked the presence sync to disconnect: it stops and sets every line " +
		"back to available. You can connect Teams again under Settings > Teams.",
	"reconnect": "Ready to connect Teams again: press the button below and sign in at " +
		"Microsoft. Setera's approval still holds.",
}

// syncView is the presence sync panel of the dashboard.
type syncView struct {
	Conn *connection
	// Words says the sync's state in a sentence.
	Words string
	// CanPause and CanResume pick the buttons; both when the state is not
	// known.
	CanPause, CanResume bool
	ConfirmErr          string
	// Linked counts the working links in the store: the sync's own count
	// arrives only with its first report, minutes after the import.
	Linked int
}

// syncStateWords say what each sync state means for the admin's lines.
var syncStateWords = map[workflows.SyncState]string{
	workflows.SyncRunning: "Running: Teams presence reaches your phones within seconds.",
	workflows.SyncPaused: "Paused: OneSync leaves every line as it is until you resume " +
		"the sync.",
	workflows.SyncThrottled: "Throttled: Microsoft asked OneSync to slow down, so lines " +
		"may follow Teams a little later for a while. OneSync carries on by itself.",
	workflows.SyncFailing: "Failing: the last attempts did not work. OneSync keeps " +
		"retrying by itself; if this stays, contact Setera support.",
}

func newSyncView(cn *connection, confirmErr string) *syncView {
	v := &syncView{Conn: cn, ConfirmErr: confirmErr, CanPause: true, CanResume: true}
	if cn.Sync != nil {
		v.Words = syncStateWords[cn.Sync.State]
		if v.Words == "" {
			v.Words = "The sync reports the state " + string(cn.Sync.State) + "."
		}
		v.CanPause = cn.Sync.State != workflows.SyncPaused
		v.CanResume = cn.Sync.State == workflows.SyncPaused
	}
	return v
}
