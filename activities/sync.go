package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// SyncProgress is SyncPresence's heartbeat: what a retry of the same window
// needs so that it pushes no state twice. It holds only the extensions
// changed in this window, not the tenant's whole state, to stay small.
type SyncProgress struct {
	WindowEnd   time.Time                       `json:"windowEnd"`
	Lines       map[string]workflows.LineRecord `json:"lines,omitempty"` // user id → last pushed
	Polls       int                             `json:"polls"`
	Pushes      int                             `json:"pushes"`
	Requests    int                             `json:"requests"`
	Broken      int                             `json:"broken"`
	Throttled   bool                            `json:"throttled,omitempty"`
	ThrottledAt time.Time                       `json:"throttledAt,omitempty"`
}

// SyncPresence runs one bounded polling window of a tenant's presence
// sync, following Temporal's pattern for frequent polling: one long
// activity that polls every Interval and heartbeats, not one activity per
// poll.
//
// Each poll reads the presences of the tenant's linked users, maps them
// with the organisation's profile, and pushes to the PBX only the line
// states that differ from the last pushed one, each with the next sequence
// number and an idempotency key derived from tenant, user, sequence and
// state, so that a retry after a crash replays a push rather than making a
// new one. Pushed states are saved in the store and heartbeated; a retry
// starts from the newer of the two.
//
// An extension the PBX does not know marks its link broken and the others
// carry on. A revoked consent, a missing permission or refused OneSync
// credentials end the window at once with a non-retryable error; throttling
// waits as Graph asks; any other Graph failure is counted, logged and
// retried at the next poll. On cancellation or worker shutdown the window
// ends early and returns its summary.
func (a *Activities) SyncPresence(ctx context.Context,
	in workflows.SyncPresenceInput) (workflows.SyncPresenceResult, error) {
	if in.OrgID == "" || in.TenantID == "" {
		return workflows.SyncPresenceResult{}, invalid("sync presence: org id and tenant id are required")
	}
	if in.Interval < 0 || in.Window < 0 {
		return workflows.SyncPresenceResult{},
			invalid("sync presence: interval and window must not be negative")
	}
	if in.Interval == 0 {
		in.Interval = DefaultSyncInterval
	}
	if in.Window == 0 {
		in.Window = DefaultSyncWindow
	}

	s, err := a.newSyncer(ctx, in)
	if err != nil {
		return workflows.SyncPresenceResult{}, err
	}

	a.Metrics.syncing(1)
	defer a.Metrics.syncing(-1)
	s.log.Info("presence sync window started", zap.Int("linked", len(s.ids)),
		zap.Duration("interval", in.Interval), zap.Time("windowEnd", s.progress.WindowEnd))

	err = s.run(ctx)
	res := s.result()
	if err != nil {
		return res, err
	}
	s.log.Info("presence sync window ended", zap.Int("polls", res.Polls),
		zap.Int("pushes", res.Pushes), zap.Int("broken", res.Broken),
		zap.Bool("throttled", res.Throttled))
	return res, nil
}

// userLine is what the sync knows of one linked user.
type userLine struct {
	ext       string
	state     presence.LineState // last pushed; "" if never
	seq       int64
	avail     string
	activity  string
	changedAt time.Time
}

// syncer is one SyncPresence window.
type syncer struct {
	a        *Activities
	in       workflows.SyncPresenceInput
	pbxOrg   string
	profile  presence.Profile
	users    map[string]*userLine
	ids      []string
	progress SyncProgress
	log      *zap.Logger

	throttledUntil time.Time
	failing        bool // the previous read failed: log recovery, not every failure
	pushFailing    bool // the previous poll's pushes failed: likewise
	saveFailing    bool // the previous save to the store failed: likewise
	lastError      string
}

func (a *Activities) newSyncer(ctx context.Context,
	in workflows.SyncPresenceInput) (*syncer, error) {
	log := a.log().With(zap.String("tenant", in.TenantID), zap.String("org", in.OrgID))
	_, org, err := a.tenantAndOrg(ctx, "sync presence", in.TenantID, in.OrgID)
	if err != nil {
		return nil, err
	}
	s := &syncer{a: a, in: in, pbxOrg: org.PBXOrg, users: map[string]*userLine{}, log: log}

	s.profile, err = presence.ParseProfile([]byte(org.Profile))
	if err != nil {
		// A profile is validated when it is saved; if a bad one slipped
		// through, the default keeps lamps right instead of stopping sync.
		log.Warn("presence profile unreadable, using the default", zap.Error(err))
		s.profile = presence.DefaultProfile()
		s.lastError = "presence profile unreadable: " + err.Error()
	}

	links, err := a.Store.Links(ctx, in.TenantID)
	if err != nil {
		return nil, storeErr("load links", err)
	}
	for _, l := range links {
		if l.Broken || l.Extension == "" {
			continue
		}
		s.users[l.UserID] = &userLine{
			ext: l.Extension, state: presence.LineState(l.LineState), seq: l.Seq,
			avail: l.Availability, activity: l.Activity, changedAt: l.ChangedAt,
		}
		s.ids = append(s.ids, l.UserID)
	}

	// A cached token keeps working after the customer deleted the app:
	// ask Entra afresh once a window, so that revocation ends this window.
	if f, ok := a.Graph.(interface{ ForgetToken(tenant string) }); ok {
		f.ForgetToken(in.TenantID)
	}

	s.progress = SyncProgress{
		WindowEnd: a.now().Add(in.Window),
		Lines:     map[string]workflows.LineRecord{},
	}
	if activity.HasHeartbeatDetails(ctx) {
		s.resume(ctx)
	}
	return s, nil
}

// resume takes over a previous attempt's heartbeat: its counters, its
// window end and the states it pushed, where they are newer than the
// store's.
func (s *syncer) resume(ctx context.Context) {
	var p SyncProgress
	if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
		s.log.Warn("heartbeat details unreadable, starting the window afresh", zap.Error(err))
		return
	}
	for id, rec := range p.Lines {
		if u, ok := s.users[id]; ok && rec.Seq > u.seq {
			u.state, u.seq = rec.State, rec.Seq
		}
	}
	if p.Lines == nil {
		p.Lines = map[string]workflows.LineRecord{}
	}
	if p.WindowEnd.IsZero() || p.WindowEnd.After(s.progress.WindowEnd) {
		p.WindowEnd = s.progress.WindowEnd
	}
	s.progress = p
	s.log.Info("presence sync window resumed from heartbeat",
		zap.Int("changedLines", len(p.Lines)), zap.Int("polls", p.Polls))
}

// run polls until the window ends, the context is cancelled or the worker
// stops. Polls start every Interval from the start of the previous one; a
// poll that runs late is followed by the next one at once, never two.
func (s *syncer) run(ctx context.Context) error {
	ticker := time.NewTicker(s.in.Interval)
	defer ticker.Stop()
	end := time.NewTimer(max(time.Until(s.progress.WindowEnd), 0))
	defer end.Stop()
	stop := activity.GetWorkerStopChannel(ctx)

	for {
		if time.Now().Before(s.throttledUntil) {
			activity.RecordHeartbeat(ctx, s.progress)
		} else if err := s.poll(ctx); err != nil {
			return err
		}

		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			s.log.Info("worker stopping, ending the presence sync window early")
			return nil
		case <-end.C:
			return nil
		case <-ticker.C:
		}
	}
}

// poll reads, maps, diffs and pushes once. It returns an error only when
// the window must end at once.
func (s *syncer) poll(ctx context.Context) error {
	if len(s.ids) == 0 {
		activity.RecordHeartbeat(ctx, s.progress)
		return nil
	}

	observed := s.a.now()
	var got graph.PresenceResult
	var err error
	s.heartbeatDuring(ctx, func() { got, err = s.a.Graph.Presences(ctx, s.in.TenantID, s.ids) })
	if err != nil && ctx.Err() != nil {
		return nil // the window ends; nothing failed
	}
	s.progress.Polls++
	s.progress.Requests += max(got.Requests, 1)
	if err != nil {
		if stop := s.graphFailure(err); stop != nil {
			return stop
		}
	} else if stop := s.batchFailures(got); stop != nil {
		return stop
	}
	s.a.Metrics.graphOutcome("ok", got.Requests-distinctErrors(got.Failed))

	changes, updates := s.diff(got.Presences)
	updates = append(updates, s.push(ctx, observed, changes)...)
	if len(updates) > 0 {
		err := s.a.Store.SaveStates(ctx, s.in.TenantID, updates)
		switch {
		case err != nil && !s.saveFailing:
			// The heartbeat still carries the pushed states for a retry;
			// the next save writes the newest ones.
			s.log.Warn("saving line states failed", zap.Error(err))
			s.saveFailing = true
		case err == nil && s.saveFailing:
			s.log.Info("saving line states recovered")
			s.saveFailing = false
		}
	}

	if err == nil && len(got.Failed) == 0 && s.failing {
		s.failing = false
		s.log.Info("presence reads recovered")
	}
	activity.RecordHeartbeat(ctx, s.progress)
	return nil
}

// heartbeatKeepAlive is how often a poll that is still waiting heartbeats.
// It is well inside the workflow's heartbeat timeout (30 s), so that a read
// that waits out a long Retry-After, or a push that retries, does not look
// like a dead worker.
var heartbeatKeepAlive = 5 * time.Second

// recordHeartbeat is activity.RecordHeartbeat; tests count the calls.
var recordHeartbeat = activity.RecordHeartbeat

// heartbeatDuring runs fn and, while it runs, heartbeats the progress as it
// stood when fn began. fn must not change s.progress: the heartbeats read
// it from another goroutine, and stop before heartbeatDuring returns.
func (s *syncer) heartbeatDuring(ctx context.Context, fn func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(heartbeatKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				recordHeartbeat(ctx, s.progress)
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
}

// change is one line state to push.
type change struct {
	user string
	out  presence.Outcome
	p    presence.Presence
}

// diff maps the presences and returns the line changes to push, and the
// store updates of users whose presence changed but whose line did not.
func (s *syncer) diff(ps map[string]presence.Presence) ([]change, []store.StateUpdate) {
	var changes []change
	var updates []store.StateUpdate
	for _, id := range s.ids {
		p, ok := ps[id]
		if !ok {
			continue
		}
		u := s.users[id]
		out := s.profile.Map(p)
		if out.State != u.state {
			changes = append(changes, change{user: id, out: out, p: p})
			continue
		}
		if p.Availability != u.avail || p.Activity != u.activity {
			u.avail, u.activity = p.Availability, p.Activity
			updates = append(updates, store.StateUpdate{
				UserID: id, Availability: u.avail, Activity: u.activity,
				LineState: string(u.state), Seq: u.seq, ChangedAt: u.changedAt,
			})
		}
	}
	return changes, updates
}

// push publishes the changes, a bounded number at a time, and returns the
// store updates of those that reached the PBX.
func (s *syncer) push(ctx context.Context, observed time.Time,
	changes []change) []store.StateUpdate {
	if len(changes) == 0 {
		return nil
	}
	outs := make([]pushOutcome, len(changes))
	sem := make(chan struct{}, s.a.pushConcurrency())
	s.heartbeatDuring(ctx, func() {
		var wg sync.WaitGroup
		for i, c := range changes {
			u := s.users[c.user]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				outs[i] = s.a.publishAt(ctx, s.pbxOrg, s.in.TenantID, c.user, u.ext, c.out,
					u.seq, observed)
			}()
		}
		wg.Wait()
	})

	var updates []store.StateUpdate
	failed := 0
	var firstErr error
	for i, c := range changes {
		o, u := outs[i], s.users[c.user]
		switch {
		case o.notFound:
			s.breakLink(ctx, c.user, u.ext)
		case o.err != nil:
			failed++
			if firstErr == nil {
				firstErr = o.err
			}
		default:
			u.state, u.seq, u.changedAt = c.out.State, o.seq, observed
			u.avail, u.activity = c.p.Availability, c.p.Activity
			s.progress.Lines[c.user] = workflows.LineRecord{State: u.state, Seq: u.seq}
			if !o.stale {
				s.progress.Pushes++
			}
			updates = append(updates, store.StateUpdate{
				UserID: c.user, Availability: u.avail, Activity: u.activity,
				LineState: string(u.state), Seq: u.seq, ChangedAt: observed,
			})
		}
	}
	switch {
	case failed > 0:
		// Not pushed: the difference remains and the next poll tries again.
		s.lastError = "push to PBX failed: " + firstErr.Error()
		if !s.pushFailing {
			s.log.Warn("pushes to the PBX failed, retrying at the next poll",
				zap.Int("failed", failed), zap.Error(firstErr))
		}
		s.pushFailing = true
	case s.pushFailing:
		s.pushFailing = false
		s.log.Info("pushes to the PBX recovered")
	}
	return updates
}

// breakLink marks a link broken and leaves its user out from now on.
func (s *syncer) breakLink(ctx context.Context, user, ext string) {
	reason := "extension " + ext + " not found at the PBX"
	if err := s.a.Store.MarkLinkBroken(ctx, s.in.TenantID, user, reason); err != nil {
		s.log.Warn("marking a link broken failed", zap.String("user", user), zap.Error(err))
	}
	s.log.Warn("link broken: extension not found at the PBX",
		zap.String("user", user), zap.String("extension", ext))
	delete(s.users, user)
	for i, id := range s.ids {
		if id == user {
			s.ids = append(s.ids[:i], s.ids[i+1:]...)
			break
		}
	}
	s.progress.Broken++
}

// graphFailure handles a failed presence read. It returns the error that
// ends the window, or nil to carry on.
func (s *syncer) graphFailure(err error) error {
	f := classifyGraph(err)
	s.a.Metrics.graphOutcome(string(f.Class), 1)
	if perm := s.a.permanentGraphError(s.in.TenantID, err); perm != nil {
		return perm
	}
	if f.Class == graph.ClassThrottled {
		s.throttled(f)
		return nil
	}

	s.lastError = err.Error()
	if !s.failing {
		s.failing = true
		s.log.Warn("presence read failed, retrying at the next poll",
			zap.String("class", string(f.Class)), zap.Error(err))
	}
	return nil
}

// batchFailures handles batches that failed inside a read whose other
// batches succeeded. A failure that concerns the whole tenant (revoked,
// permission, credentials) ends the window as if the read had failed.
func (s *syncer) batchFailures(got graph.PresenceResult) error {
	if len(got.Failed) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, err := range got.Failed {
		if err == nil || seen[err.Error()] {
			continue
		}
		seen[err.Error()] = true
		if stop := s.graphFailure(err); stop != nil {
			return stop
		}
	}
	return nil
}

func (s *syncer) throttled(f graph.Failure) {
	now := s.a.now()
	if !s.progress.Throttled {
		s.log.Warn("graph throttled the presence reads", zap.Duration("retryAfter", f.RetryAfter))
	}
	s.progress.Throttled = true
	s.progress.ThrottledAt = now
	if f.RetryAfter > 0 {
		// Waiting is measured on the real clock, as the ticker is.
		s.throttledUntil = time.Now().Add(f.RetryAfter)
	}
}

func (s *syncer) result() workflows.SyncPresenceResult {
	return workflows.SyncPresenceResult{
		Polls:       s.progress.Polls,
		Pushes:      s.progress.Pushes,
		Requests:    s.progress.Requests,
		Linked:      len(s.ids),
		Broken:      s.progress.Broken,
		Throttled:   s.progress.Throttled,
		ThrottledAt: s.progress.ThrottledAt,
		LastError:   s.lastError,
	}
}

// permanentGraphError returns the non-retryable contract error of a Graph
// failure that concerns the whole tenant and that retrying cannot fix, or
// nil for any other failure.
func (a *Activities) permanentGraphError(tenant string, err error) error {
	f := classifyGraph(err)
	log := a.log().With(zap.String("tenant", tenant), zap.String("code", f.Code))
	switch f.Class {
	case graph.ClassRevoked:
		log.Warn("consent revoked: OneSync's app is gone from the tenant")
		return temporal.NewNonRetryableApplicationError(
			"Microsoft no longer accepts OneSync in this tenant ("+codeOr(f, "consent revoked")+
				"): the enterprise application was removed or disabled. Connect Teams again to resume.",
			workflows.ErrConsentRevoked, err)
	case graph.ClassPermission:
		log.Warn("graph refused a permission (403)")
		return temporal.NewNonRetryableApplicationError(
			"Microsoft Graph refused OneSync a permission it needs (Presence.Read.All, "+
				"User.Read.All). Grant admin consent again with all permissions.",
			workflows.ErrPermissionMissing, err)
	case graph.ClassCredentials:
		log.Error("OneSync's own credentials were refused: operator action needed")
		return temporal.NewNonRetryableApplicationError(
			"OneSync's own Microsoft credentials were refused; Setera must renew them.",
			workflows.ErrCredentials, err)
	}
	return nil
}

// releaseHeartbeatEvery is how many released lines ReleaseLines heartbeats
// at a time; a retry after a crash re-releases at most that many.
const releaseHeartbeatEvery = 100

// ReleaseLines sets every working extension of the tenant back to
// available, so that nobody's lamp stays busy when the sync ends
// (revocation, disconnect). A failure on one extension does not stop the
// others; if any failed for a reason that may pass, the activity returns an
// error after trying them all, so that its retry releases the rest (the
// heartbeat lists the extensions already released, which a retry skips).
func (a *Activities) ReleaseLines(ctx context.Context,
	in workflows.ReleaseLinesInput) (workflows.ReleaseLinesResult, error) {
	_, org, err := a.tenantAndOrg(ctx, "release lines", in.TenantID, in.OrgID)
	if err != nil {
		return workflows.ReleaseLinesResult{}, err
	}
	links, err := a.Store.Links(ctx, in.TenantID)
	if err != nil {
		return workflows.ReleaseLinesResult{}, storeErr("load links", err)
	}
	reason := in.Reason
	if reason == "" {
		reason = "sync ended"
	}
	out := presence.Outcome{State: presence.Available, Reason: reason}

	// A retry skips the extensions an earlier attempt released: they are
	// listed in its heartbeat.
	var released []string
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &released)
	}
	done := make(map[string]bool, len(released))
	for _, u := range released {
		done[u] = true
	}

	var res workflows.ReleaseLinesResult
	var updates []store.StateUpdate
	var failed []string
	var firstErr error
	now := a.now()
	for _, l := range links {
		// Every working link is released, even one the store records as
		// available or never pushed: a window that pushed and then died
		// before saving leaves the PBX ahead of the store, and a lamp that
		// stays busy after the sync has ended is worse than one extra push.
		if l.Broken || done[l.UserID] {
			continue
		}
		o := a.publishAt(ctx, org.PBXOrg, in.TenantID, l.UserID, l.Extension, out, l.Seq, now)
		switch {
		case o.notFound:
			if err := a.Store.MarkLinkBroken(ctx, in.TenantID, l.UserID,
				"extension "+l.Extension+" not found at the PBX"); err != nil {
				a.log().Warn("marking a link broken failed", zap.String("tenant", in.TenantID),
					zap.String("user", l.UserID), zap.Error(err))
			}
		case o.err != nil:
			failed = append(failed, l.Extension)
			if firstErr == nil {
				firstErr = o.err
			}
		default:
			if !o.stale {
				res.Released++
			}
			updates = append(updates, store.StateUpdate{
				UserID: l.UserID, Availability: l.Availability, Activity: l.Activity,
				LineState: string(presence.Available), Seq: o.seq, ChangedAt: now,
			})
			released = append(released, l.UserID)
			// The list is encoded at every heartbeat: every
			// releaseHeartbeatEvery lines, and once at the end, keep that
			// linear in the tenant's size.
			if len(released)%releaseHeartbeatEvery == 0 {
				activity.RecordHeartbeat(ctx, released)
			}
		}
	}
	activity.RecordHeartbeat(ctx, released)

	if len(updates) > 0 {
		if err := a.Store.SaveStates(ctx, in.TenantID, updates); err != nil {
			return res, storeErr("save released states", err)
		}
	}
	a.log().Info("lines released", zap.String("tenant", in.TenantID),
		zap.Int("released", res.Released), zap.Int("failed", len(failed)), zap.String("reason", reason))
	if firstErr != nil {
		return res, fmt.Errorf("release %d extensions (%v): %w", len(failed), failed, firstErr)
	}
	detail := fmt.Sprintf("%d extensions set to available: %s", res.Released, reason)
	return res, a.audit(ctx, "system", in.OrgID, "lines-released", detail)
}

// pushOutcome is how one publish ended.
type pushOutcome struct {
	seq      int64 // the sequence number the PBX now holds for us
	stale    bool  // the PBX already held a newer update
	notFound bool  // the PBX does not know the extension
	err      error
}

// publishAt sets one extension's line state with the sequence number after
// lastSeq.
//
// A stale answer means the PBX holds a sequence number the store did not
// record: a previous attempt pushed and then crashed before saving, and
// the state has changed since. The state is then pushed once more with the
// next number, so that the newest state wins; a second stale answer counts
// as pushed. A refused reused key counts as pushed at once (see keyReused).
func (a *Activities) publishAt(ctx context.Context, pbxOrg, tenant, user, ext string,
	out presence.Outcome, lastSeq int64, observed time.Time) pushOutcome {
	seq := lastSeq + 1
	for try := 0; ; try++ {
		u := pbx.Update{
			Org: pbxOrg, Extension: ext, State: out.State, Reason: out.Reason,
			Seq: seq, IdempotencyKey: IdempotencyKey(tenant, user, seq, out.State),
			ObservedAt: observed,
		}
		start := time.Now()
		err := a.PBX.Publish(ctx, u)
		a.Metrics.pushed(time.Since(start), out.State, err)

		switch {
		case err == nil:
			return pushOutcome{seq: seq}
		case errors.Is(err, pbx.ErrStale) && try == 0:
			seq++
		case errors.Is(err, pbx.ErrStale), keyReused(err):
			return pushOutcome{seq: seq, stale: true}
		case errors.Is(err, pbx.ErrExtensionNotFound):
			return pushOutcome{notFound: true, err: err}
		default:
			return pushOutcome{err: fmt.Errorf("publish extension %s: %w", ext, err)}
		}
	}
}

// keyReused reports whether the PBX refused an idempotency key it already
// holds for a different body. The key names tenant, user, sequence number
// and state, so this is a push of the same state with the same number that
// reached the PBX before (a retry after a crash, with a newer observation
// time or reason): the PBX already has this change, which counts as pushed.
// The REST connector reports the refusal only by its contract code in the
// error text; a typed error in package pbx would make this check exact.
func keyReused(err error) bool {
	return err != nil && strings.Contains(err.Error(), pbx.CodeIdempotencyReused)
}

// publish is publishAt observed now.
func (a *Activities) publish(ctx context.Context, pbxOrg, tenant, user, ext string,
	out presence.Outcome, lastSeq int64) pushOutcome {
	return a.publishAt(ctx, pbxOrg, tenant, user, ext, out, lastSeq, a.now())
}

// IdempotencyKey is the PBX idempotency key of one push: the same tenant,
// user, sequence number and state always give the same key, so a push
// retried after a crash is recognised by the PBX as a replay.
func IdempotencyKey(tenant, user string, seq int64, state presence.LineState) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + user + "\x00" +
		strconv.FormatInt(seq, 10) + "\x00" + string(state)))
	return "os1-" + hex.EncodeToString(h[:16])
}

func distinctErrors(failed map[string]error) int {
	seen := map[string]bool{}
	for _, err := range failed {
		if err != nil {
			seen[err.Error()] = true
		}
	}
	return len(seen)
}
