package api

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"golang.org/x/crypto/bcrypt"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

const (
	authority = "http://127.0.0.1:9/sim" // never contacted: tests only read the URL
	clientID  = "11111111-2222-3333-4444-555555555555"
	tenantA   = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

func init() { bcryptCost = bcrypt.MinCost }

// env is the portal on a loopback test server, with a real SQLite store
// and a mocked Temporal client that plays the workflows: it keeps each
// workflow's status, refuses a second start of the same ID while the
// first runs (and after it closed unless the policy allows a duplicate)
// and records every signal.
type env struct {
	t   *testing.T
	db  *store.DB
	tc  *mocks.Client
	srv *httptest.Server

	mu       sync.Mutex
	now      time.Time
	started  []client.StartWorkflowOptions
	inputs   []workflows.OnboardingInput // the input of each start, as started
	statuses map[string]any              // workflow id → status the query answers
	closed   map[string]bool             // workflow ids whose run has ended
	signals  []sentSignal
}

type sentSignal struct {
	WorkflowID, Name string
	Arg              any
}

// newEnv starts the portal; each option may change its Deps.
func newEnv(t *testing.T, options ...func(*Deps)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "onesync.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	e := &env{t: t, db: db, tc: &mocks.Client{}, statuses: map[string]any{},
		closed: map[string]bool{}, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e.mockTemporal()

	d := Deps{
		Temporal:         e.tc,
		Store:            db,
		PublicURL:        "http://portal.test",
		ConsentAuthority: authority,
		ClientID:         clientID,
		TemporalUIURL:    "http://127.0.0.1:8233",
		Namespace:        "default",
		Now:              e.clock,
	}
	for _, o := range options {
		o(&d)
	}
	h, err := NewServer(d)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) mockTemporal() {
	e.tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, o client.StartWorkflowOptions, wf any,
			args ...any) (client.WorkflowRun, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if _, ok := e.statuses[o.ID]; ok && (!e.closed[o.ID] ||
				o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE) {
				return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "")
			}
			in := args[0].(workflows.OnboardingInput)
			e.started = append(e.started, o)
			e.inputs = append(e.inputs, in)
			delete(e.closed, o.ID)
			st := workflows.OnboardingStatus{OrgID: in.OrgID,
				Stage: workflows.StageAwaitingApproval, RegisteredAt: in.RegisteredAt,
				StageSince: in.RegisteredAt}
			if in.Reconnect {
				st.Stage, st.StageSince = workflows.StageAwaitingConsent, e.now
				st.ApprovedBy = workflows.ApprovedEarlier
			}
			e.statuses[o.ID] = st
			return &mocks.WorkflowRun{}, nil
		})
	e.tc.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").
		Return(func(_ context.Context, id, _ string) (
			*workflowservice.DescribeWorkflowExecutionResponse, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if _, ok := e.statuses[id]; !ok {
				return nil, serviceerror.NewNotFound("workflow not found")
			}
			status := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			if e.closed[id] {
				status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
			}
			return &workflowservice.DescribeWorkflowExecutionResponse{
				WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: status}}, nil
		})
	e.tc.On("QueryWorkflow", mock.Anything, mock.Anything, "", workflows.QueryStatus).
		Return(func(_ context.Context, id, _, _ string, _ ...any) (converter.EncodedValue, error) {
			e.mu.Lock()
			st, ok := e.statuses[id]
			e.mu.Unlock()
			if !ok {
				return nil, serviceerror.NewNotFound("workflow not found")
			}
			p, err := converter.GetDefaultDataConverter().ToPayloads(st)
			if err != nil {
				return nil, err
			}
			return client.NewValue(p), nil
		})
	e.tc.On("SignalWorkflow", mock.Anything, mock.Anything, "", mock.Anything, mock.Anything).
		Return(func(_ context.Context, id, _, name string, arg any) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if _, ok := e.statuses[id]; !ok || e.closed[id] {
				return serviceerror.NewNotFound("workflow not found")
			}
			e.signals = append(e.signals, sentSignal{WorkflowID: id, Name: name, Arg: arg})
			return nil
		})
}

// setStatus plays the workflow moving on, and mirrors the stage into the
// store as its RecordStage activity does.
func (e *env) setStatus(orgID string, st workflows.OnboardingStatus) {
	e.t.Helper()
	e.mu.Lock()
	if st.StageSince.IsZero() {
		st.StageSince = e.now
	}
	e.statuses[workflows.OnboardingID(orgID)] = st
	e.mu.Unlock()
	err := e.db.SetOrgStage(context.Background(), orgID, string(st.Stage), st.LastError,
		st.StageSince)
	if err != nil {
		e.t.Fatalf("set org stage: %v", err)
	}
}

// closeWorkflow plays a workflow run ending: its status stays queryable,
// as Temporal answers queries of closed workflows, but signals fail.
func (e *env) closeWorkflow(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed[id] = true
}

func (e *env) setSyncStatus(tenantID string, st workflows.PresenceSyncStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.statuses[workflows.PresenceSyncID(tenantID)] = st
}

func (e *env) signalsNamed(name string) []sentSignal {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []sentSignal
	for _, s := range e.signals {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// browser is one person's browser: its own cookies, no redirect following.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatalf("cookie jar: %v", err)
	}
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}}
}

// answer is a response with its body read.
type answer struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
	Cookies  []*http.Cookie
}

func (b *browser) do(req *http.Request) answer {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatalf("read %s: %v", req.URL, err)
	}
	return answer{Status: res.StatusCode, Body: string(body), Header: res.Header,
		Location: res.Header.Get("Location"), Cookies: res.Cookies()}
}

func (b *browser) get(path string) answer {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as the browser would, with the CSRF token of the page
// at from (unless the form sets csrf itself).
func (b *browser) post(from, path string, form url.Values) answer {
	b.e.t.Helper()
	if _, ok := form["csrf"]; !ok && from != "" {
		form.Set("csrf", csrfOf(b.e.t, b.get(from).Body))
	}
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path,
		strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// upload sends a file as a multipart form, as a browser's file input
// does, with the CSRF token of the page at from (none when from is "").
func (b *browser) upload(from, path, name string, content []byte) answer {
	b.e.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if from != "" {
		if err := w.WriteField("csrf", csrfOf(b.e.t, b.get(from).Body)); err != nil {
			b.e.t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile(fileField, name)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if _, err := fw.Write(content); err != nil {
		b.e.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.e.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, &body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.do(req)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no CSRF field:\n%s", body)
	}
	return m[1]
}

// registration is a valid register form.
func registration(org, email string) url.Values {
	return url.Values{
		"org_name":         {org},
		"pbx_org":          {strings.ToLower(strings.ReplaceAll(org, " ", "-"))},
		"name":             {"Aino Admin"},
		"email":            {email},
		"phone":            {"+358 40 123 4567"},
		"password":         {"correct horse battery"},
		"password_confirm": {"correct horse battery"},
	}
}

// register registers an organisation and returns the signed-in browser and
// the organisation's id.
func (e *env) register(org, email string) (*browser, string) {
	e.t.Helper()
	b := e.browser()
	a := b.post("/register", "/register", registration(org, email))
	if a.Status != http.StatusSeeOther || !strings.HasPrefix(a.Location, "/orgs/") {
		e.t.Fatalf("register %s: status %d, location %q\n%s", org, a.Status, a.Location, a.Body)
	}
	return b, strings.TrimPrefix(a.Location, "/orgs/")
}

// addStaff creates a staff account and returns a browser logged in with it.
func (e *env) staff(email string) *browser {
	e.t.Helper()
	hash, err := HashPassword("staff password 1")
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := randomID()
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.db.CreateStaff(context.Background(), store.Staff{ID: id, Email: email,
		Name: "Sami Staff", PasswordHash: hash})
	if err != nil && !errors.Is(err, store.ErrDuplicate) {
		e.t.Fatalf("create staff: %v", err)
	}
	b := e.browser()
	a := b.post("/staff/login", "/staff/login",
		url.Values{"email": {email}, "password": {"staff password 1"}})
	if a.Status != http.StatusSeeOther || a.Location != "/staff" {
		e.t.Fatalf("staff login: status %d, location %q\n%s", a.Status, a.Location, a.Body)
	}
	return b
}

// text returns a page's visible text with tags removed and spaces folded,
// so that assertions read like what a person sees.
func text(body string) string {
	body = regexp.MustCompile(`(?s)<head>.*?</head>`).ReplaceAllString(body, " ")
	body = regexp.MustCompile(`<[^>]+>`).ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(body)), " ")
}

func wantText(t *testing.T, a answer, want ...string) {
	t.Helper()
	got := text(a.Body)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("page lacks %q; it reads:\n%s", w, got)
		}
	}
}

func wantStatus(t *testing.T, a answer, status int) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status %d, want %d; page reads:\n%s", a.Status, status, text(a.Body))
	}
}

// fieldError returns the message shown next to a field, empty when none.
func fieldError(body, name string) string {
	re := regexp.MustCompile(`id="f-` + regexp.QuoteMeta(name) + `-error">(.*?)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return text(m[1])
}
