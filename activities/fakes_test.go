package activities

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
)

// Compile-time proof that the real store is what Activities expects.
var _ Store = (*store.DB)(nil)

const (
	testOrg    = "org-1"
	testPBXOrg = "pbx-7"
	testTenant = "11111111-2222-3333-4444-555555555555"
)

// presenceStep is one scripted answer of fakeGraph.Presences.
type presenceStep struct {
	ps     map[string]presence.Presence
	failed map[string]error
	err    error
}

// fakeGraph answers presences from a script. Once the script is used up it
// cancels the activity's context, which ends the window deterministically
// after exactly len(script) polls.
type fakeGraph struct {
	mu      sync.Mutex
	script  []presenceStep
	calls   int
	cancel  context.CancelFunc
	idsSeen [][]string
	times   []time.Time // when each read started

	consent    graph.Consent
	consentErr error
	users      []graph.User
	deltas     map[string]graph.UserDelta // delta link asked → answer
	deltaErrs  map[string]error
	deltaAsked []string
}

func (g *fakeGraph) Presences(ctx context.Context, tenant string, ids []string) (graph.PresenceResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.times = append(g.times, time.Now())
	g.idsSeen = append(g.idsSeen, append([]string(nil), ids...))
	if g.calls > len(g.script) {
		g.cancel()
		return graph.PresenceResult{}, ctx.Err()
	}
	st := g.script[g.calls-1]
	if st.err != nil {
		return graph.PresenceResult{}, st.err
	}
	res := graph.PresenceResult{Presences: map[string]presence.Presence{}, Failed: st.failed, Requests: 1}
	for _, id := range ids {
		if p, ok := st.ps[id]; ok {
			res.Presences[id] = p
		}
	}
	return res, nil
}

func (g *fakeGraph) VerifyConsent(ctx context.Context, tenant string) (graph.Consent, error) {
	return g.consent, g.consentErr
}

func (g *fakeGraph) ListUsers(ctx context.Context, tenant string) ([]graph.User, error) {
	return g.users, nil
}

func (g *fakeGraph) UserChanges(ctx context.Context, tenant, link string) (graph.UserDelta, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deltaAsked = append(g.deltaAsked, link)
	if err := g.deltaErrs[link]; err != nil {
		return graph.UserDelta{}, err
	}
	d, ok := g.deltas[link]
	if !ok {
		return graph.UserDelta{}, errors.New("fake graph: unexpected delta link " + link)
	}
	return d, nil
}

func (g *fakeGraph) SetPresence(ctx context.Context, tenant, userID string, p presence.Presence) error {
	return errors.New("fake graph: SetPresence not used")
}

func (g *fakeGraph) ClearPresence(ctx context.Context, tenant, userID string) error {
	return errors.New("fake graph: ClearPresence not used")
}

// fakePBX behaves as the PBX contract says: an idempotency key seen before
// is a replay and changes nothing; an update whose Seq is not above the
// extension's last one is stale.
type fakePBX struct {
	mu       sync.Mutex
	exts     []pbx.Extension
	missing  map[string]bool  // extensions the PBX does not know
	failing  map[string]error // extensions whose pushes fail
	received []pbx.Update     // every call
	applied  []pbx.Update     // updates that changed a line
	keys     map[string]*pbx.Update
	seq      map[string]int64
	state    map[string]presence.LineState
}

func newFakePBX(exts ...pbx.Extension) *fakePBX {
	return &fakePBX{exts: exts, missing: map[string]bool{}, failing: map[string]error{},
		keys: map[string]*pbx.Update{}, seq: map[string]int64{}, state: map[string]presence.LineState{}}
}

func (p *fakePBX) Extensions(ctx context.Context, org string) ([]pbx.Extension, error) {
	if org != testPBXOrg {
		return nil, errors.New("fake pbx: unknown org " + org)
	}
	return p.exts, nil
}

func (p *fakePBX) Publish(ctx context.Context, u pbx.Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received = append(p.received, u)
	switch {
	case p.missing[u.Extension]:
		return pbx.ErrExtensionNotFound
	case p.failing[u.Extension] != nil:
		return p.failing[u.Extension]
	case p.keys[u.IdempotencyKey] != nil:
		// As the contract says: the same body is a replay, another body
		// with the same key is refused.
		if old := p.keys[u.IdempotencyKey]; *old != u {
			return errors.New("pbx: status 422: " + pbx.CodeIdempotencyReused)
		}
		return nil
	case u.Seq <= p.seq[u.Extension]:
		return pbx.ErrStale
	}
	p.keys[u.IdempotencyKey] = &u
	p.seq[u.Extension] = u.Seq
	p.state[u.Extension] = u.State
	p.applied = append(p.applied, u)
	return nil
}

// appliedTo lists the states applied to one extension, in order.
func (p *fakePBX) appliedTo(ext string) []presence.LineState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []presence.LineState
	for _, u := range p.applied {
		if u.Extension == ext {
			out = append(out, u.State)
		}
	}
	return out
}

func (p *fakePBX) receivedFor(ext string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, u := range p.received {
		if u.Extension == ext {
			n++
		}
	}
	return n
}

// openStore opens a fresh SQLite store with one organisation; bound binds
// testTenant to it.
func openStore(t *testing.T, bound bool) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/t.db")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	err = db.CreateOrgWithAdmin(ctx,
		store.Org{ID: testOrg, Name: "Example Oy", PBXOrg: testPBXOrg, Stage: "importing"},
		store.Admin{ID: "admin-1", Email: "admin@example.fi", Name: "Admin"})
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	if bound {
		if err := db.BindTenant(ctx, testTenant, testOrg, time.Now()); err != nil {
			t.Fatalf("bind tenant: %v", err)
		}
	}
	return db
}

// link stores links for the given user → extension pairs.
func link(t *testing.T, db *store.DB, links ...store.Link) {
	t.Helper()
	for i := range links {
		links[i].TenantID, links[i].OrgID = testTenant, testOrg
		if links[i].MatchedBy == "" {
			links[i].MatchedBy = MatchedByEmail
		}
	}
	if err := db.ReplaceLinks(context.Background(), testTenant, links); err != nil {
		t.Fatalf("replace links: %v", err)
	}
}

func linksByUser(t *testing.T, db *store.DB) map[string]store.Link {
	t.Helper()
	ls, err := db.Links(context.Background(), testTenant)
	if err != nil {
		t.Fatalf("links: %v", err)
	}
	out := map[string]store.Link{}
	for _, l := range ls {
		out[l.UserID] = l
	}
	return out
}

// activityEnv returns a test activity environment whose activities run with
// a context that the returned cancel ends.
func activityEnv(a *Activities) (*testsuite.TestActivityEnvironment, context.CancelFunc) {
	var s testsuite.WorkflowTestSuite
	// The SDK's test logger prints every heartbeat; failures say enough.
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestActivityEnvironment()
	ctx, cancel := context.WithCancel(context.Background())
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(a)
	return env, cancel
}

// appErrorType returns the application error type of err and whether it is
// non-retryable, or "" when err is not an application error.
func appErrorType(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		return "", false
	}
	return ae.Type(), ae.NonRetryable()
}

func p(avail, act string) presence.Presence {
	return presence.Presence{Availability: avail, Activity: act}
}

type pbxUpdate = pbx.Update
