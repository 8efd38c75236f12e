package presencee2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// interval is the polling interval of every stack here: devstacktest's
// default and the product's minimum.
const interval = time.Second

// window is the sync window of every stack except the history test's.
// The worker sets the polling pace for the whole process
// (workflows.SetDeploymentPace), so stacks that run in parallel in one test
// binary must share it; TestHistoryPerWindowIsConstant, with its own short
// window, runs alone before the parallel tests.
const window = 5 * time.Second

// maxDelay is the acceptance for one presence change: the polling
// interval plus one second, from Graph's change to OneCloud's receipt.
const maxDelay = interval + time.Second

// demo extension numbers of graphsim.DemoUsers()[0..9], in order.
var demoExt = []string{"1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008",
	"1009", "1010"}

// startDemo runs a stack with the given window and connects the demo
// tenant. logger, when not nil, receives the stack's lines.
func startDemo(t *testing.T, window time.Duration, logger *zap.Logger) (*devstack.Stack,
	devstacktest.Org) {
	t.Helper()
	s := devstacktest.Start(t, devstack.Options{SyncInterval: interval, SyncWindow: window,
		Logger: logger})
	org := devstacktest.Connect(t, s, "Demo Oy", graphsim.DemoTenantID, onecloudsim.DemoOrg)
	if org.Import.Activated != len(demoExt) {
		t.Fatalf("%d demo users activated, want %d", org.Import.Activated, len(demoExt))
	}
	for _, ext := range demoExt {
		waitLine(t, s, onecloudsim.DemoOrg, ext, presence.Available, 30*time.Second)
	}
	return s, org
}

// seeded is a generated tenant whose every user has an extension.
type seeded struct {
	TenantID string
	PBXOrg   string
	Users    []string          // user ids in directory order
	Ext      map[string]string // user id → extension number
}

// connectSeeded generates a tenant of n enabled, licensed members in the
// Graph simulator, gives each an extension (matched by sign-in address) in
// a new OneCloud organisation and connects it.
func connectSeeded(t *testing.T, s *devstack.Stack, seed int64, n int) seeded {
	t.Helper()
	info, err := s.Graph.AddMemberTenant(seed, n)
	if err != nil {
		t.Fatalf("add tenant %d: %v", seed, err)
	}
	users, err := s.Graph.Users(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	sd := seeded{TenantID: info.ID, PBXOrg: fmt.Sprintf("org%d", seed),
		Ext: make(map[string]string, len(users))}
	exts := make([]pbx.Extension, 0, len(users))
	for i, u := range users {
		num := fmt.Sprintf("%d", 10000+i)
		exts = append(exts, pbx.Extension{Number: num, Name: u.DisplayName, Email: u.UPN})
		sd.Users = append(sd.Users, u.ID)
		sd.Ext[u.ID] = num
	}
	s.OneCloud.AddOrg(sd.PBXOrg, info.Name)
	if err := s.OneCloud.SetExtensions(sd.PBXOrg, exts); err != nil {
		t.Fatal(err)
	}
	org := devstacktest.Connect(t, s, info.Name, info.ID, sd.PBXOrg)
	if org.Import.Activated != n {
		t.Fatalf("%d users of %s activated, want %d", org.Import.Activated, info.Name, n)
	}
	return sd
}

// waitLine waits until the OneCloud simulator shows ext in state.
func waitLine(t *testing.T, s *devstack.Stack, org, ext string, want presence.LineState,
	within time.Duration) {
	t.Helper()
	devstacktest.Eventually(t, within, "extension "+ext+" "+string(want), func() error {
		if st, _ := s.OneCloud.LineState(org, ext); st != want {
			return fmt.Errorf("line state %q", st)
		}
		return nil
	})
}

// receipt waits for the first applied update that sets ext to want and
// was received after since, and returns it.
func receipt(t *testing.T, s *devstack.Stack, org, ext string, want presence.LineState,
	since time.Time, within time.Duration) onecloudsim.Receipt {
	t.Helper()
	var got onecloudsim.Receipt
	devstacktest.Eventually(t, within, "extension "+ext+" set "+string(want), func() error {
		for _, r := range s.OneCloud.Received() {
			if r.Org == org && r.Extension == ext && r.State == want &&
				r.Outcome == onecloudsim.OutcomeApplied && !r.ReceivedAt.Before(since) {
				got = r
				return nil
			}
		}
		st, _ := s.OneCloud.LineState(org, ext)
		return fmt.Errorf("no such update yet; line state %q", st)
	})
	return got
}

// propagate applies a Graph simulator action to a user and returns how long
// the OneCloud simulator took to receive the resulting line state.
func propagate(t *testing.T, s *devstack.Stack, tenant, user, org, ext, action string,
	want presence.LineState) time.Duration {
	t.Helper()
	changed, err := s.Graph.ApplyAction(tenant, user, action)
	if err != nil {
		t.Fatalf("%s for %s: %v", action, user, err)
	}
	r := receipt(t, s, org, ext, want, changed, 30*time.Second)
	return r.ReceivedAt.Sub(changed)
}

// status queries the tenant's presence sync.
func status(t *testing.T, s *devstack.Stack, tenant string) workflows.PresenceSyncStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := devstacktest.SyncStatus(ctx, s, tenant)
	if err != nil {
		t.Fatalf("status of %s: %v", tenant, err)
	}
	return st
}

// signal sends a PresenceSync signal to the current run.
func signal(t *testing.T, s *devstack.Stack, tenant, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.SignalWorkflow(ctx, workflows.PresenceSyncID(tenant), "", name,
		workflows.SyncSignal{SentAt: time.Now(), By: "test"}); err != nil {
		t.Fatalf("signal %s: %v", name, err)
	}
}

// run is one recorded run of a workflow.
type run struct {
	ID     string
	Events []*historypb.HistoryEvent
	Bytes  int64
	// Next is the run it continued as, "" if it has not ended that way.
	Next string
}

// count counts the events of type k, and of activity type activity when
// k is ACTIVITY_TASK_SCHEDULED and activity is not empty.
func (r run) count(k enums.EventType, activity string) int {
	n := 0
	for _, e := range r.Events {
		if e.GetEventType() != k {
			continue
		}
		if activity != "" && e.GetActivityTaskScheduledEventAttributes().GetActivityType().
			GetName() != activity {
			continue
		}
		n++
	}
	return n
}

// closed reports the run's closing event type, or unspecified if it runs.
func (r run) closed() enums.EventType {
	if len(r.Events) == 0 {
		return enums.EVENT_TYPE_UNSPECIFIED
	}
	switch k := r.Events[len(r.Events)-1].GetEventType(); k {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
		enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		return k
	}
	return enums.EVENT_TYPE_UNSPECIFIED
}

// carried decodes the input a continued-as-new run handed to the next one.
func (r run) carried() (workflows.PresenceSyncInput, error) {
	var in workflows.PresenceSyncInput
	last := r.Events[len(r.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes()
	if last == nil {
		return in, errors.New("the run did not continue as new")
	}
	err := converter.GetDefaultDataConverter().FromPayloads(last.GetInput(), &in)
	return in, err
}

// runs reads every run of a workflow from the server, oldest first: the
// current run names the first in its started event, and each
// continued-as-new event names the next.
func runs(t *testing.T, s *devstack.Stack, workflowID string) []run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	latest, err := readRun(ctx, s, workflowID, "")
	if err != nil {
		t.Fatalf("read %s: %v", workflowID, err)
	}
	first := latest.Events[0].GetWorkflowExecutionStartedEventAttributes().
		GetFirstExecutionRunId()
	if first == "" {
		t.Fatalf("%s: started event names no first run", workflowID)
	}

	var out []run
	for id := first; id != ""; {
		r, err := readRun(ctx, s, workflowID, id)
		if err != nil {
			t.Fatalf("read %s run %s: %v", workflowID, id, err)
		}
		out = append(out, r)
		id = r.Next
		if len(out) > 1000 {
			t.Fatalf("%s: more than 1,000 runs", workflowID)
		}
	}
	return out
}

func readRun(ctx context.Context, s *devstack.Stack, workflowID, runID string) (run, error) {
	desc, err := s.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return run{}, fmt.Errorf("describe: %w", err)
	}
	info := desc.GetWorkflowExecutionInfo()
	r := run{ID: info.GetExecution().GetRunId(), Bytes: info.GetHistorySizeBytes()}
	it := s.Client.GetWorkflowHistory(ctx, workflowID, r.ID, false,
		enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return run{}, fmt.Errorf("history: %w", err)
		}
		r.Events = append(r.Events, e)
	}
	if len(r.Events) == 0 {
		return run{}, io.ErrUnexpectedEOF
	}
	if a := r.Events[len(r.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
		r.Next = a.GetNewExecutionRunId()
	}
	return r, nil
}

// eventNames lists event types briefly, for failure messages.
func eventNames(evs []*historypb.HistoryEvent) string {
	names := make([]string, 0, len(evs))
	for _, e := range evs {
		names = append(names, strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_"))
	}
	return strings.Join(names, " ")
}

// staffPage logs in on the portal as the stack's staff account and returns
// the text of one staff page.
func staffPage(t *testing.T, s *devstack.Stack, path string) string {
	t.Helper()
	if s.StaffPassword == "" {
		t.Fatal("the stack did not create its staff account")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	get := func(p string) string {
		resp, err := c.Get(s.PortalURL + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v", p, resp.StatusCode, err)
		}
		return string(b)
	}
	get("/staff/login")
	base, _ := url.Parse(s.PortalURL)
	csrf := ""
	for _, ck := range jar.Cookies(base) {
		if ck.Name == "onesync_csrf" {
			csrf = ck.Value
		}
	}
	resp, err := c.PostForm(s.PortalURL+"/staff/login", url.Values{
		"email": {s.StaffEmail}, "password": {s.StaffPassword}, "csrf": {csrf}})
	if err != nil {
		t.Fatalf("staff log-in: %v", err)
	}
	_ = resp.Body.Close()
	if resp.Request.URL.Path != "/staff" {
		t.Fatalf("staff log-in ended on %s (status %d)", resp.Request.URL.Path, resp.StatusCode)
	}
	return get(path)
}

// observedLogger is t's logger at warning level that also records every
// line from info level up, for tests that check what the worker did.
func observedLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	warn := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()
	return zap.New(zapcore.NewTee(warn, core)), logs
}

// trace describes each run for a failure message: what it started with,
// the signals it received in order, and how it ended.
func trace(rs []run) string {
	var b strings.Builder
	for i, r := range rs {
		var in workflows.PresenceSyncInput
		st := r.Events[0].GetWorkflowExecutionStartedEventAttributes()
		_ = converter.GetDefaultDataConverter().FromPayloads(st.GetInput(), &in)
		fmt.Fprintf(&b, "run %d: paused %t, carried %v\n  signals:", i+1, in.Paused,
			in.PendingSignals)
		for _, e := range r.Events {
			if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
				fmt.Fprintf(&b, " %s", a.GetSignalName())
			}
		}
		fmt.Fprintf(&b, "\n  ended: %s after %d events\n", r.closed(), len(r.Events))
	}
	return b.String()
}
