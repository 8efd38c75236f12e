package activities

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// syncFixture is a tenant of three linked users, 101 to 103.
type syncFixture struct {
	db    *store.DB
	graph *fakeGraph
	pbx   *fakePBX
	acts  *Activities
}

func newSyncFixture(t *testing.T, script ...presenceStep) *syncFixture {
	t.Helper()
	db := openStore(t, true)
	link(t, db,
		store.Link{UserID: "u1", Extension: "101", DisplayName: "Anna"},
		store.Link{UserID: "u2", Extension: "102", DisplayName: "Ben"},
		store.Link{UserID: "u3", Extension: "103", DisplayName: "Cai"},
	)
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := &syncFixture{db: db, graph: &fakeGraph{script: script}, pbx: newFakePBX()}
	f.acts = &Activities{Store: db, Graph: f.graph, PBX: f.pbx, Metrics: metrics}
	return f
}

// run runs one SyncPresence window through the SDK's activity test
// environment, with heartbeat details from an earlier attempt if given.
func (f *syncFixture) run(t *testing.T, heartbeat *SyncProgress) (workflows.SyncPresenceResult, error) {
	t.Helper()
	return f.runWith(t, heartbeat, time.Millisecond, time.Minute)
}

func (f *syncFixture) runWith(t *testing.T, heartbeat *SyncProgress,
	interval, window time.Duration) (workflows.SyncPresenceResult, error) {
	t.Helper()
	env, cancel := activityEnv(f.acts)
	defer cancel()
	f.graph.cancel = cancel
	if heartbeat != nil {
		env.SetHeartbeatDetails(*heartbeat)
	}
	val, err := env.ExecuteActivity(f.acts.SyncPresence, workflows.SyncPresenceInput{
		OrgID: testOrg, TenantID: testTenant, Interval: interval, Window: window,
	})
	if err != nil {
		return workflows.SyncPresenceResult{}, err
	}
	var res workflows.SyncPresenceResult
	if err := val.Get(&res); err != nil {
		t.Fatalf("decode result: %v", err)
	}
	return res, nil
}

func allUsers(u1, u2, u3 presence.Presence) presenceStep {
	return presenceStep{ps: map[string]presence.Presence{"u1": u1, "u2": u2, "u3": u3}}
}

func TestSyncPushesOnlyChanges(t *testing.T) {
	inCall, free, away := p("Busy", "InACall"), p("Available", "Available"), p("Away", "Away")
	meeting := p("Busy", "InAMeeting")
	f := newSyncFixture(t,
		allUsers(inCall, free, away),
		allUsers(inCall, free, away),  // nothing changed
		allUsers(meeting, free, away), // presence changed, line still busy
		allUsers(free, free, away),    // the call ended
	)

	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}

	if got := f.pbx.appliedTo("101"); !slices.Equal(got, []presence.LineState{presence.Busy, presence.Available}) {
		t.Errorf("101 received %v, want busy then available", got)
	}
	if got := f.pbx.appliedTo("102"); !slices.Equal(got, []presence.LineState{presence.Available}) {
		t.Errorf("102 received %v, want available once", got)
	}
	if got := f.pbx.appliedTo("103"); !slices.Equal(got, []presence.LineState{presence.Away}) {
		t.Errorf("103 received %v, want away once", got)
	}
	if n := len(f.pbx.received); n != 4 {
		t.Errorf("PBX got %d pushes, want 4 (unchanged states are not pushed)", n)
	}
	for _, u := range f.pbx.received {
		if u.Org != testPBXOrg || u.IdempotencyKey == "" || u.ObservedAt.IsZero() {
			t.Errorf("update %+v lacks org, idempotency key or observation time", u)
		}
	}
	if res.Polls != 4 || res.Pushes != 4 || res.Linked != 3 || res.Broken != 0 {
		t.Errorf("result = %+v, want 4 polls, 4 pushes, 3 linked", res)
	}

	links := linksByUser(t, f.db)
	if l := links["u1"]; l.LineState != "available" || l.Seq != 2 || l.Availability != "Available" {
		t.Errorf("stored u1 = %s seq %d (%s), want available seq 2", l.LineState, l.Seq, l.Availability)
	}
	if l := links["u3"]; l.LineState != "away" || l.Seq != 1 {
		t.Errorf("stored u3 = %s seq %d, want away seq 1", l.LineState, l.Seq)
	}
	m := f.acts.Metrics
	if got := metricValue(t, m.Pushes.WithLabelValues("busy")); got != 1 {
		t.Errorf("busy pushes metric = %v, want 1", got)
	}
	if got := metricValue(t, m.TenantsSyncing); got != 0 {
		t.Errorf("tenants syncing after the window = %v, want 0", got)
	}
	if got := metricValue(t, m.GraphRequests.WithLabelValues("ok")); got != 4 {
		t.Errorf("ok graph requests = %v, want 4", got)
	}
}

func TestSyncPollsAreSpacedByTheInterval(t *testing.T) {
	free := p("Available", "Available")
	f := newSyncFixture(t, allUsers(free, free, free), allUsers(free, free, free),
		allUsers(free, free, free), allUsers(free, free, free))
	const interval = 25 * time.Millisecond

	if _, err := f.runWith(t, nil, interval, time.Minute); err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	// Reads follow the ticker's schedule: the k-th starts k intervals after
	// the first, neither earlier nor pushed back by a late one. Only the
	// lower bound is asserted: a loaded machine may be late, never early.
	for k := 1; k < len(f.graph.times); k++ {
		since := f.graph.times[k].Sub(f.graph.times[0])
		if least := time.Duration(k)*interval - 2*time.Millisecond; since < least {
			t.Errorf("read %d started %v after the first, want at least %v", k+1, since, least)
		}
	}
}

func TestSyncWithoutLinksWaitsOutTheWindow(t *testing.T) {
	f := newSyncFixture(t)
	link(t, f.db) // no links
	const window = 150 * time.Millisecond

	start := time.Now()
	res, err := f.runWith(t, nil, 10*time.Millisecond, window)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	// Returning at once would make the workflow loop windows and grow its
	// history for nothing.
	if took := time.Since(start); took < window {
		t.Errorf("window ended after %v, want at least %v", took, window)
	}
	if f.graph.calls != 0 || res.Polls != 0 || res.Linked != 0 {
		t.Errorf("graph asked %d times, result %+v; want no reads for no links", f.graph.calls, res)
	}
}

func TestSyncUnknownExtensionBreaksOnlyItsLink(t *testing.T) {
	inCall, free := p("Busy", "InACall"), p("Available", "Available")
	f := newSyncFixture(t,
		allUsers(inCall, inCall, inCall),
		allUsers(free, inCall, free),
		allUsers(inCall, free, inCall),
	)
	f.pbx.missing["102"] = true

	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}

	if n := f.pbx.receivedFor("102"); n != 1 {
		t.Errorf("102 was tried %d times, want once: a broken link is left alone", n)
	}
	want := []presence.LineState{presence.Busy, presence.Available, presence.Busy}
	for _, ext := range []string{"101", "103"} {
		if got := f.pbx.appliedTo(ext); !slices.Equal(got, want) {
			t.Errorf("%s received %v, want %v", ext, got, want)
		}
	}
	if l := linksByUser(t, f.db)["u2"]; !l.Broken || l.BrokenReason == "" {
		t.Errorf("u2's link = broken %v (%q), want broken with a reason", l.Broken, l.BrokenReason)
	}
	if ids := f.graph.idsSeen[len(f.graph.idsSeen)-1]; slices.Contains(ids, "u2") {
		t.Errorf("presence still read for u2 after its link broke: %v", ids)
	}
	if res.Broken != 1 || res.Linked != 2 {
		t.Errorf("result = %+v, want 1 broken, 2 linked", res)
	}
}

func TestSyncPermanentGraphErrorsStopAtOnce(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"app deleted (AADSTS7000229)",
			&graph.Error{Op: "token", Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000229"},
			workflows.ErrConsentRevoked},
		{"app not found (AADSTS700016)",
			&graph.Error{Op: "token", Status: 400, Code: "unauthorized_client", AADSTS: "AADSTS700016"},
			workflows.ErrConsentRevoked},
		{"403 on presence read",
			&graph.Error{Op: "presences", Status: 403, Code: "Forbidden"},
			workflows.ErrPermissionMissing},
		{"OneSync's secret expired",
			&graph.Error{Op: "token", Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000222"},
			workflows.ErrCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			free := p("Available", "Available")
			f := newSyncFixture(t, allUsers(free, free, free), presenceStep{err: tt.err},
				allUsers(free, free, free))

			_, err := f.run(t, nil)

			typ, nonRetryable := appErrorType(err)
			if typ != tt.want || !nonRetryable {
				t.Fatalf("error = %v (type %q, non-retryable %v), want non-retryable %s",
					err, typ, nonRetryable, tt.want)
			}
			if f.graph.calls != 2 {
				t.Errorf("graph was asked %d times, want 2: the window ends at the failure", f.graph.calls)
			}
		})
	}
}

func TestSyncOneFailedBatchDoesNotStopTheOthers(t *testing.T) {
	inCall := p("Busy", "InACall")
	unavailable := &graph.Error{Op: "presences", Status: 503, Code: "ServiceUnavailable"}
	f := newSyncFixture(t,
		presenceStep{err: unavailable}, // a whole read fails: counted, next poll
		presenceStep{
			ps:     map[string]presence.Presence{"u1": inCall, "u2": inCall},
			failed: map[string]error{"u3": unavailable},
		},
		allUsers(inCall, inCall, inCall),
	)

	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	for _, ext := range []string{"101", "102", "103"} {
		if got := f.pbx.appliedTo(ext); !slices.Equal(got, []presence.LineState{presence.Busy}) {
			t.Errorf("%s received %v, want busy once", ext, got)
		}
	}
	if res.LastError == "" || res.Polls != 3 {
		t.Errorf("result = %+v, want 3 polls and the transient error noted", res)
	}
}

func TestSyncThrottledCarriesOn(t *testing.T) {
	inCall := p("Busy", "InACall")
	f := newSyncFixture(t,
		presenceStep{err: &graph.Error{Op: "presences", Status: 429, RetryAfter: 20 * time.Millisecond}},
		allUsers(inCall, inCall, inCall),
	)

	res, err := f.run(t, nil)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	if !res.Throttled || res.ThrottledAt.IsZero() {
		t.Errorf("result = %+v, want throttled noted", res)
	}
	if len(f.pbx.applied) != 3 {
		t.Errorf("PBX applied %d updates, want 3 after the throttling passed", len(f.pbx.applied))
	}
}

// A retry of a window whose previous attempt pushed a state and heartbeated
// it, but crashed before the store saved it, must not push it again.
func TestSyncRetryWithHeartbeatDoesNotRepush(t *testing.T) {
	inCall, free := p("Busy", "InACall"), p("Available", "Available")
	f := newSyncFixture(t,
		allUsers(inCall, free, free),
		allUsers(free, free, free),
	)
	// The first attempt: u1 busy (seq 1), u2 and u3 available (seq 1), all
	// applied at the PBX and heartbeated; the store never heard of them.
	heartbeat := SyncProgress{
		WindowEnd: time.Now().Add(time.Minute),
		Lines: map[string]workflows.LineRecord{
			"u1": {State: presence.Busy, Seq: 1},
			"u2": {State: presence.Available, Seq: 1},
			"u3": {State: presence.Available, Seq: 1},
		},
		Polls: 7, Pushes: 3, Requests: 7,
	}
	for user, ext := range map[string]string{"u1": "101", "u2": "102", "u3": "103"} {
		rec := heartbeat.Lines[user]
		err := f.pbx.Publish(context.Background(), updateFor(user, ext, rec))
		if err != nil {
			t.Fatal(err)
		}
	}
	before := len(f.pbx.received)

	res, err := f.run(t, &heartbeat)
	if err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}

	sent := f.pbx.received[before:]
	if len(sent) != 1 || sent[0].Extension != "101" || sent[0].State != presence.Available ||
		sent[0].Seq != 2 {
		t.Fatalf("retry sent %+v, want only 101 available with seq 2", sent)
	}
	if res.Polls != 9 || res.Pushes != 4 {
		t.Errorf("result = %+v, want the heartbeat's counters carried on (9 polls, 4 pushes)", res)
	}
	if l := linksByUser(t, f.db)["u1"]; l.Seq != 2 || l.LineState != "available" {
		t.Errorf("stored u1 = %s seq %d, want available seq 2", l.LineState, l.Seq)
	}
}

// A crash between the push and the heartbeat leaves nothing but the PBX's
// memory: the retry sends the same update with the same key, a replay.
func TestSyncRetryAfterCrashReplaysWithTheSameKey(t *testing.T) {
	inCall := p("Busy", "InACall")
	f := newSyncFixture(t, allUsers(inCall, inCall, inCall))
	err := f.pbx.Publish(context.Background(),
		updateFor("u1", "101", workflows.LineRecord{State: presence.Busy, Seq: 1}))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.run(t, nil); err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	if got := f.pbx.appliedTo("101"); len(got) != 1 {
		t.Errorf("101 applied %v, want busy once: the retry must be a replay", got)
	}
	if l := linksByUser(t, f.db)["u1"]; l.Seq != 1 || l.LineState != "busy" {
		t.Errorf("stored u1 = %s seq %d, want busy seq 1", l.LineState, l.Seq)
	}
}

// A crash after the push, followed by a different presence, finds the PBX a
// sequence number ahead; the newest state must still reach it.
func TestSyncStaleAfterCrashPushesTheNewestState(t *testing.T) {
	free := p("Available", "Available")
	f := newSyncFixture(t, allUsers(free, free, free))
	err := f.pbx.Publish(context.Background(),
		updateFor("u1", "101", workflows.LineRecord{State: presence.Busy, Seq: 1}))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.run(t, nil); err != nil {
		t.Fatalf("SyncPresence: %v", err)
	}
	if got := f.pbx.state["101"]; got != presence.Available || f.pbx.seq["101"] != 2 {
		t.Errorf("101 is %s at seq %d, want available at seq 2", got, f.pbx.seq["101"])
	}
}

func TestReleaseLinesSetsEveryBusyLineAvailable(t *testing.T) {
	db := openStore(t, true)
	link(t, db,
		store.Link{UserID: "u1", Extension: "101"},
		store.Link{UserID: "u2", Extension: "102"},
		store.Link{UserID: "u3", Extension: "103"},
		store.Link{UserID: "u4", Extension: "104"},
		store.Link{UserID: "u5", Extension: "105"},
	)
	ctx := context.Background()
	err := db.SaveStates(ctx, testTenant, []store.StateUpdate{
		{UserID: "u1", LineState: "busy", Seq: 4, Availability: "Busy", Activity: "InACall"},
		{UserID: "u2", LineState: "dnd", Seq: 2},
		{UserID: "u3", LineState: "available", Seq: 9},
		{UserID: "u5", LineState: "busy", Seq: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	pb := newFakePBX()
	pb.failing["105"] = errors.New("pbx unreachable")
	acts := &Activities{Store: db, PBX: pb}
	env, cancel := activityEnv(acts)
	defer cancel()

	_, err = env.ExecuteActivity(acts.ReleaseLines, workflows.ReleaseLinesInput{
		OrgID: testOrg, TenantID: testTenant, Reason: "consent revoked",
	})

	if err == nil {
		t.Errorf("ReleaseLines succeeded although 105 could not be released; its retry must follow")
	}
	if pb.state["101"] != presence.Available || pb.seq["101"] != 5 {
		t.Errorf("101 is %s at seq %d, want available at seq 5", pb.state["101"], pb.seq["101"])
	}
	if pb.state["102"] != presence.Available || pb.seq["102"] != 3 {
		t.Errorf("102 is %s at seq %d, want available at seq 3", pb.state["102"], pb.seq["102"])
	}
	// The store may lag the PBX after a crash, so lines it records as
	// available or never pushed are released too.
	if pb.state["103"] != presence.Available || pb.state["104"] != presence.Available {
		t.Errorf("103 is %s and 104 is %s, want both available", pb.state["103"], pb.state["104"])
	}
	for _, u := range pb.applied {
		if u.Reason != "consent revoked" {
			t.Errorf("update for %s carries reason %q", u.Extension, u.Reason)
		}
	}
	links := linksByUser(t, db)
	if l := links["u1"]; l.LineState != "available" || l.Seq != 5 || l.Activity != "InACall" {
		t.Errorf("stored u1 = %s seq %d activity %q, want available seq 5, presence kept",
			l.LineState, l.Seq, l.Activity)
	}
	if l := links["u5"]; l.LineState != "busy" {
		t.Errorf("stored u5 = %s, want still busy until its release succeeds", l.LineState)
	}

	// The retry, with the first attempt's heartbeat, releases what is left.
	delete(pb.failing, "105")
	env.SetHeartbeatDetails([]string{"u1", "u2", "u3", "u4"})
	val, err := env.ExecuteActivity(acts.ReleaseLines, workflows.ReleaseLinesInput{
		OrgID: testOrg, TenantID: testTenant, Reason: "consent revoked",
	})
	if err != nil {
		t.Fatalf("ReleaseLines retry: %v", err)
	}
	var res workflows.ReleaseLinesResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Released != 1 || pb.state["105"] != presence.Available {
		t.Errorf("retry released %d, 105 is %s; want 1 and available", res.Released, pb.state["105"])
	}
}

func updateFor(user, ext string, rec workflows.LineRecord) pbxUpdate {
	return pbxUpdate{
		Org: testPBXOrg, Extension: ext, State: rec.State, Seq: rec.Seq,
		IdempotencyKey: IdempotencyKey(testTenant, user, rec.Seq, rec.State), ObservedAt: time.Now(),
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric is neither counter nor gauge")
	return 0
}
