package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Pace and bounds of a tenant's presence sync. PresenceSyncInput.Interval
// and Window override the defaults; the bounds keep any input sane.
const (
	DefaultSyncInterval = 2 * time.Second
	DefaultSyncWindow   = 5 * time.Minute
	MinSyncInterval     = time.Second
	MaxSyncWindow       = time.Hour

	// SyncWindowMargin is added to the window for SyncPresence's
	// start-to-close timeout: the activity finishes its last poll and push.
	SyncWindowMargin = time.Minute
	// SyncHeartbeatTimeout is how soon a window on a dead worker is retried
	// elsewhere, and how soon a cancelled window must acknowledge.
	SyncHeartbeatTimeout = 30 * time.Second

	// UserRefreshEvery is how often, in workflow time, RefreshUsers re-reads
	// the tenant's users through the users delta.
	UserRefreshEvery = 30 * time.Minute

	// FailingBackoff is the wait after a missing permission or broken
	// credentials; TransientBackoff after any other error that outlived the
	// retry policy. A signal ends either wait at once.
	FailingBackoff   = 15 * time.Minute
	TransientBackoff = time.Minute

	// MaxWindowsPerRun and MaxSignalsPerRun bound one run's history: a run
	// continues as new after this many windows or received signals, or
	// sooner when the server suggests it.
	MaxWindowsPerRun = 50
	MaxSignalsPerRun = 100
)

// presenceSignals are the PresenceSync signals, in the order a batch that
// arrived together is queued.
var presenceSignals = []string{
	SignalPause, SignalResume, SignalResyncUsers, SignalConfigChanged, SignalDisconnect,
}

// Activity options of the PresenceSync workflow. SyncPresence's depend on
// the window: see syncPresenceOptions.
var (
	// RefreshUsers reads the users delta and updates links: seconds to a
	// few minutes. Cancellation waits for it so that two deltas of one
	// tenant never run at once.
	refreshUsersOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    5,
			NonRetryableErrorTypes: []string{
				ErrConsentRevoked, ErrPermissionMissing, ErrCredentials,
			},
		},
	}

	// ReleaseLines must succeed, or somebody's lamp stays busy: it is
	// retried with backoff for up to a day, visible as a pending activity.
	releaseLinesOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
		},
	}

	// MarkTenant writes one row; retried like ReleaseLines.
	markTenantOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
		},
	}
)

// syncPresenceOptions are SyncPresence's options for a window: it runs for
// the window, heartbeats, and resumes from its last heartbeat on retry.
// Ten attempts cover a worker crash or a Graph outage of some minutes;
// then the workflow shows failing and tries again after TransientBackoff.
func syncPresenceOptions(window time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: window + SyncWindowMargin,
		HeartbeatTimeout:    SyncHeartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
			NonRetryableErrorTypes: []string{
				ErrConsentRevoked, ErrPermissionMissing, ErrCredentials,
			},
		},
	}
}

// PresenceSync keeps a tenant's Teams presence flowing to OneCloud. It runs
// the SyncPresence activity one bounded window after another (Temporal's
// pattern for frequent polling), refreshes the users every
// UserRefreshEvery, handles the pause, resume, resync-users,
// config-changed and disconnect signals by interrupting the running
// window, and continues as new after MaxWindowsPerRun windows, carrying
// its state and every signal it has not handled. On revocation or
// disconnect it sets every extension back to available, marks the tenant
// and ends. Its ID is PresenceSyncID.
func PresenceSync(ctx workflow.Context, in PresenceSyncInput) error {
	if in.OrgID == "" || in.TenantID == "" {
		return temporal.NewNonRetryableApplicationError(
			"presence sync input needs an organisation and a tenant id", "InvalidInput", nil)
	}

	s := newPresenceSync(ctx, in)
	err := workflow.SetQueryHandler(ctx, QueryStatus, func() (PresenceSyncStatus, error) {
		return s.snapshot(), nil
	})
	if err != nil {
		return fmt.Errorf("set status query handler: %w", err)
	}

	s.log.Info("Presence sync run started", "run", s.in.Run, "paused", s.in.Paused,
		"carriedSignals", len(s.queue))
	return s.run(ctx)
}

// presenceSync is the state of one PresenceSync run. in holds everything
// that is carried into the next run.
type presenceSync struct {
	in       PresenceSyncInput
	state    SyncState
	since    time.Time
	lastErr  string
	log      log.Logger
	channels map[string]workflow.ReceiveChannel

	wctx       workflow.Context // the run's root context, for the workflow clock
	queue      []PendingSignal  // signals received and not yet handled, oldest first
	refreshDue bool             // resync-users asked for a refresh not yet done
	windows    int              // windows started in this run
	interval   time.Duration    // polling interval of this run
	windowLen  time.Duration    // length of one SyncPresence window
	received   int              // signals received in this run
}

func newPresenceSync(ctx workflow.Context, in PresenceSyncInput) *presenceSync {
	now := workflow.Now(ctx)
	if in.Run < 1 {
		in.Run = 1
	}
	if in.LastUserSync.IsZero() {
		// The first run follows ImportUsers: the users were just read.
		in.LastUserSync = now
	}

	s := &presenceSync{
		wctx:     ctx,
		in:       in,
		state:    SyncRunning,
		since:    now,
		log:      log.With(workflow.GetLogger(ctx), "org", in.OrgID, "tenant", in.TenantID),
		channels: make(map[string]workflow.ReceiveChannel, len(presenceSignals)),
	}
	s.interval, s.windowLen = runPace(ctx, in.Interval, in.Window)
	if in.Paused {
		s.state = SyncPaused
	}
	for _, name := range presenceSignals {
		s.channels[name] = workflow.GetSignalChannel(ctx, name)
	}
	s.queue = append(s.queue, in.PendingSignals...)
	s.in.PendingSignals = nil
	return s
}

// runPace is the pace of this run: the input's interval and window where
// it sets them, else the deployment's (SetDeploymentPace), else the
// defaults. The deployment's pace is read through a side effect, so that
// a replay on a worker with another configuration sees the recorded value;
// it is read again by every run, so a changed deployment takes effect at
// the next continue-as-new.
func runPace(ctx workflow.Context, interval, window time.Duration) (time.Duration, time.Duration) {
	if interval <= 0 || window <= 0 {
		var p pace
		v := workflow.SideEffect(ctx, func(workflow.Context) any { return currentDeploymentPace() })
		if err := v.Get(&p); err == nil {
			if interval <= 0 {
				interval = p.Interval
			}
			if window <= 0 {
				window = p.Window
			}
		}
	}
	return syncPace(interval, window)
}

// pace is a polling interval and a window length.
type pace struct {
	Interval time.Duration `json:"interval"`
	Window   time.Duration `json:"window"`
}

var deploymentPace struct {
	sync.Mutex
	pace
}

// SetDeploymentPace sets the polling interval and window that presence
// syncs of this process use when their input leaves them zero. The worker
// calls it at start from its configuration; zero keeps the defaults.
func SetDeploymentPace(interval, window time.Duration) {
	deploymentPace.Lock()
	defer deploymentPace.Unlock()
	deploymentPace.pace = pace{Interval: interval, Window: window}
}

func currentDeploymentPace() pace {
	deploymentPace.Lock()
	defer deploymentPace.Unlock()
	return deploymentPace.pace
}

// syncPace applies the defaults and bounds to an interval and a window.
func syncPace(interval, window time.Duration) (time.Duration, time.Duration) {
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	interval = max(interval, MinSyncInterval)
	if window <= 0 {
		window = DefaultSyncWindow
	}
	window = min(max(window, interval), MaxSyncWindow)
	return interval, window
}

func (s *presenceSync) snapshot() PresenceSyncStatus {
	return PresenceSyncStatus{
		TenantID:   s.in.TenantID,
		State:      s.state,
		Since:      s.since,
		LastWindow: s.in.LastWindow,
		LastError:  s.lastErr,
		Linked:     s.in.Linked,
		Totals:     s.in.Totals,
		Run:        s.in.Run,
	}
}

// run is the main loop: one step per turn, signals first.
func (s *presenceSync) run(ctx workflow.Context) error {
	for {
		if ctx.Err() != nil {
			return s.cancelled(ctx)
		}
		if s.runIsFull(ctx) {
			return s.continueAsNew(ctx)
		}
		if done, err := s.handleQueue(ctx); done {
			return err
		}

		if s.in.Paused {
			s.wait(ctx, 0)
			continue
		}

		if s.refreshDue || workflow.Now(ctx).Sub(s.in.LastUserSync) >= UserRefreshEvery {
			interrupted, done, err := s.refreshUsers(ctx)
			if done {
				return err
			}
			if interrupted {
				continue
			}
		}

		if done, err := s.window(ctx); done {
			return err
		}
	}
}

// runIsFull reports whether this run has done enough to continue as new.
func (s *presenceSync) runIsFull(ctx workflow.Context) bool {
	return s.windows >= MaxWindowsPerRun || s.received >= MaxSignalsPerRun ||
		workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// window runs one SyncPresence window and accounts for its summary.
func (s *presenceSync) window(ctx workflow.Context) (done bool, err error) {
	in := SyncPresenceInput{
		OrgID:    s.in.OrgID,
		TenantID: s.in.TenantID,
		Interval: s.interval,
		Window:   s.windowLen,
	}
	started := workflow.Now(ctx)
	s.windows++

	var res SyncPresenceResult
	opts := syncPresenceOptions(s.windowLen)
	interrupted, err := s.interruptible(ctx, opts, ActivitySyncPresence, in, &res)
	if err != nil {
		return s.onError(ctx, ActivitySyncPresence, err, true)
	}
	s.account(ctx, res)

	// A window that came back early on its own (no linked users, say)
	// must not turn the loop into a tight one.
	if !interrupted {
		if rest := s.interval - workflow.Now(ctx).Sub(started); rest > 0 {
			s.wait(ctx, rest)
		}
	}
	return false, nil
}

// account adds a finished window to the totals and the status.
func (s *presenceSync) account(ctx workflow.Context, res SyncPresenceResult) {
	s.in.Totals.Windows++
	s.in.Totals.Polls += int64(res.Polls)
	s.in.Totals.Pushes += int64(res.Pushes)
	s.in.Totals.Requests += int64(res.Requests)
	s.in.Linked = res.Linked
	s.in.LastWindow = workflow.Now(ctx)
	s.lastErr = clip(res.LastError)

	if res.Throttled {
		if s.state != SyncThrottled {
			s.log.Warn("Graph throttled the tenant", "at", res.ThrottledAt)
		}
		s.setState(ctx, SyncThrottled)
		return
	}
	s.setState(ctx, SyncRunning)
}

// refreshUsers runs RefreshUsers. A failure other than revocation or a
// lasting permission fault leaves the sync running on the old user set
// until the next refresh is due.
func (s *presenceSync) refreshUsers(ctx workflow.Context) (interrupted, done bool, err error) {
	in := RefreshUsersInput{OrgID: s.in.OrgID, TenantID: s.in.TenantID}
	var res RefreshUsersResult
	interrupted, err = s.interruptible(ctx, refreshUsersOptions, ActivityRefreshUsers, in, &res)
	if err != nil && interrupted && temporal.IsCanceledError(err) {
		return true, false, nil // refreshDue and LastUserSync stay: done after the signals
	}

	s.refreshDue = false
	s.in.LastUserSync = workflow.Now(ctx)
	if err != nil {
		done, err = s.onError(ctx, ActivityRefreshUsers, err, false)
		return interrupted, done, err
	}
	if res.Linked > 0 || res.Unlinked > 0 {
		s.log.Info("Users refreshed", "linked", res.Linked, "unlinked", res.Unlinked)
	}
	return interrupted, false, nil
}

// interruptible runs an activity until it ends or a signal arrives; a
// signal cancels it and waits for it to finish (the activity learns of the
// cancellation through its heartbeat). Every signal is queued.
func (s *presenceSync) interruptible(
	ctx workflow.Context, opts workflow.ActivityOptions, activity string, in, out any,
) (interrupted bool, err error) {
	actx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	fut := workflow.ExecuteActivity(workflow.WithActivityOptions(actx, opts), activity, in)

	finished := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(fut, func(workflow.Future) { finished = true })
	s.addSignals(sel, func() { interrupted = true })
	for !finished && !interrupted {
		sel.Select(ctx)
	}
	if interrupted {
		cancel()
	}

	err = fut.Get(ctx, out)
	s.drain()
	return interrupted, err
}

// wait blocks until a signal arrives, the workflow is cancelled or d has
// passed; d zero waits for a signal only.
func (s *presenceSync) wait(ctx workflow.Context, d time.Duration) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()

	woken := false
	sel := workflow.NewSelector(ctx)
	if d > 0 {
		sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) { woken = true })
	}
	s.addSignals(sel, func() { woken = true })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { woken = true })
	for !woken {
		sel.Select(ctx)
	}
	s.drain()
}

// addSignals adds a case per signal channel that queues what arrives and
// calls onSignal unless the signal cannot change anything (resume while
// not paused), so that a stray signal does not restart a window.
func (s *presenceSync) addSignals(sel workflow.Selector, onSignal func()) {
	for _, name := range presenceSignals {
		sel.AddReceive(s.channels[name], func(c workflow.ReceiveChannel, _ bool) {
			if s.receive(name, c) && (name != SignalResume || s.in.Paused) {
				onSignal()
			}
		})
	}
}

// drain queues every signal already delivered, without blocking.
func (s *presenceSync) drain() {
	for _, name := range presenceSignals {
		for s.receive(name, s.channels[name]) {
		}
	}
}

// receive queues one signal from c if there is one, in the order the
// senders sent them (see SyncSignal). The payload is read raw, so that a
// signal whose payload is not a SyncSignal still counts, as sent now.
func (s *presenceSync) receive(name string, c workflow.ReceiveChannel) bool {
	var raw json.RawMessage
	if !c.ReceiveAsync(&raw) {
		return false
	}
	var p SyncSignal
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	at := p.SentAt
	if at.IsZero() {
		at = workflow.Now(s.wctx)
	}
	s.queue = append(s.queue, PendingSignal{Name: name, SentAt: at})
	slices.SortStableFunc(s.queue, func(a, b PendingSignal) int {
		return a.SentAt.Compare(b.SentAt)
	})
	s.received++
	return true
}

// handleQueue handles the queued signals in order. done is true when a
// disconnect ended the sync.
func (s *presenceSync) handleQueue(ctx workflow.Context) (done bool, err error) {
	for len(s.queue) > 0 {
		name := s.queue[0].Name
		s.queue = s.queue[1:]

		switch name {
		case SignalPause:
			if s.in.Paused {
				s.ignore(name)
				continue
			}
			s.in.Paused = true
			s.setState(ctx, SyncPaused)
			s.log.Info("Presence sync paused")

		case SignalResume:
			if !s.in.Paused {
				s.ignore(name)
				continue
			}
			s.in.Paused = false
			s.setState(ctx, SyncRunning)
			s.log.Info("Presence sync resumed")

		case SignalResyncUsers:
			s.refreshDue = true

		case SignalConfigChanged:
			s.log.Info("Configuration changed: the next window reads it")

		case SignalDisconnect:
			return true, s.finish(ctx, TenantDisconnected, SyncDisconnected,
				"disconnected on request")

		default:
			s.log.Warn("Unknown carried signal ignored", "signal", name)
		}
	}
	return false, nil
}

// onError handles an activity error that outlived its retry policy.
// stall says whether a passing error should hold the loop for
// TransientBackoff (a failed window) or not (a failed refresh).
func (s *presenceSync) onError(
	ctx workflow.Context, activity string, err error, stall bool,
) (done bool, _ error) {
	if ctx.Err() != nil || temporal.IsCanceledError(err) {
		return false, nil // the loop handles the cancellation or the signal
	}

	kind := errorType(err)
	s.lastErr = clip(fmt.Sprintf("%s: %s", activity, errorText(err)))
	switch kind {
	case ErrConsentRevoked:
		s.log.Warn("Consent revoked: ending the sync", "activity", activity, "error", err)
		return true, s.finish(ctx, TenantRevoked, SyncRevoked, s.lastErr)

	case ErrPermissionMissing, ErrCredentials:
		s.log.Error("Presence sync failing", "activity", activity, "kind", kind,
			"retryIn", FailingBackoff, "error", err)
		s.setState(ctx, SyncFailing)
		s.wait(ctx, FailingBackoff)

	default:
		if !stall {
			s.log.Warn("Activity failed; the sync carries on", "activity", activity, "error", err)
			return false, nil
		}
		s.log.Warn("Presence sync failing", "activity", activity,
			"retryIn", TransientBackoff, "error", err)
		s.setState(ctx, SyncFailing)
		s.wait(ctx, TransientBackoff)
	}
	return false, nil
}

// cancelled ends a cancelled sync: lines released, tenant disconnected.
func (s *presenceSync) cancelled(ctx workflow.Context) error {
	err := s.finish(ctx, TenantDisconnected, SyncDisconnected, "presence sync cancelled")
	if err != nil {
		s.log.Error("Cleanup of a cancelled sync failed", "error", err)
	}
	return ctx.Err()
}

// finish sets every extension of the tenant back to available and records
// the tenant's state. It runs on a disconnected context so that it also
// runs while the workflow is being cancelled.
func (s *presenceSync) finish(
	ctx workflow.Context, tenant TenantState, state SyncState, reason string,
) error {
	s.setState(ctx, state)
	cctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()

	var released ReleaseLinesResult
	rin := ReleaseLinesInput{OrgID: s.in.OrgID, TenantID: s.in.TenantID, Reason: reason}
	rctx := workflow.WithActivityOptions(cctx, releaseLinesOptions)
	releaseErr := workflow.ExecuteActivity(rctx, ActivityReleaseLines, rin).Get(cctx, &released)
	if releaseErr != nil {
		s.log.Error("Releasing the lines failed", "error", releaseErr)
		releaseErr = fmt.Errorf("release lines: %w", releaseErr)
	}

	mark := MarkTenantInput{OrgID: s.in.OrgID, TenantID: s.in.TenantID, State: tenant, Reason: reason}
	mctx := workflow.WithActivityOptions(cctx, markTenantOptions)
	markErr := workflow.ExecuteActivity(mctx, ActivityMarkTenant, mark).Get(cctx, nil)
	if markErr != nil {
		s.log.Error("Marking the tenant failed", "state", tenant, "error", markErr)
		markErr = fmt.Errorf("mark tenant %s: %w", tenant, markErr)
	}

	s.drain()
	for _, p := range s.queue {
		s.ignore(p.Name)
	}
	s.queue = nil
	s.log.Info("Presence sync ended", "state", state, "released", released.Released,
		"reason", reason)
	if err := errors.Join(releaseErr, markErr); err != nil {
		return fmt.Errorf("end presence sync of tenant %s: %w", s.in.TenantID, err)
	}
	return nil
}

// continueAsNew ends the run and starts the next with the state and every
// signal not handled yet, drained just before so that none is left behind.
func (s *presenceSync) continueAsNew(ctx workflow.Context) error {
	s.drain()
	if s.refreshDue && !slices.ContainsFunc(s.queue, func(p PendingSignal) bool {
		return p.Name == SignalResyncUsers
	}) {
		s.queue = append(s.queue, PendingSignal{Name: SignalResyncUsers,
			SentAt: workflow.Now(ctx)})
	}

	next := s.in
	next.Run = s.in.Run + 1
	next.PendingSignals = slices.Clone(s.queue)
	s.log.Info("Presence sync continues as new", "run", s.in.Run, "windows", s.windows,
		"carriedSignals", len(next.PendingSignals))
	return workflow.NewContinueAsNewError(ctx, PresenceSyncWorkflow, next)
}

func (s *presenceSync) setState(ctx workflow.Context, state SyncState) {
	if s.state == state {
		return
	}
	s.state = state
	s.since = workflow.Now(ctx)
}

func (s *presenceSync) ignore(signal string) {
	s.log.Info("Signal ignored in this state", "signal", signal, "state", s.state)
}

// errorText is the innermost message of an activity error, for status.
func errorText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if appErr.Type() != "" {
			return appErr.Type() + ": " + appErr.Message()
		}
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	return err.Error()
}
