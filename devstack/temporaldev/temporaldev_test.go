package temporaldev_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/devstack/temporaldev/temporaldevtest"
	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/worker"
	"github.com/setera/onesync/workflows"
)

// greetWorkflow is a test-only workflow: it calls one activity and, when
// asked to, waits for a "go" signal first, so that a test can stop the
// server while it is in flight.
func greetWorkflow(ctx workflow.Context, name string, wait bool) (string, error) {
	if wait {
		workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var greeting string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &greeting)
	return greeting, err
}

func greetActivity(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

func registerGreet(r sdkworker.Registry) {
	r.RegisterWorkflow(greetWorkflow)
	r.RegisterActivity(greetActivity)
}

func startWorker(t *testing.T, c client.Client) {
	t.Helper()
	w := worker.New(c, worker.Options{Register: registerGreet})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
}

func TestEmbeddedServerRunsWorkflowThroughWorker(t *testing.T) {
	srv := temporaldevtest.Start(t, temporaldev.Options{})
	c := temporaldevtest.Client(t, srv)
	startWorker(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "greet-ada",
		TaskQueue: workflows.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrStage).
				ValueSet(string(workflows.StageImporting)),
			temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrOrg).ValueSet("org-1"),
		),
	}, greetWorkflow, "Ada", false)
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if got != "hello Ada" {
		t.Fatalf("workflow returned %q, want %q", got, "hello Ada")
	}

	// An operator filters by the stage in the Temporal UI; the same query
	// through the API must find the workflow.
	query := fmt.Sprintf("%s = '%s' AND %s = 'org-1'", workflows.SearchAttrStage,
		workflows.StageImporting, workflows.SearchAttrOrg)
	testutil.Eventually(t, 30*time.Second, "workflow found by search attribute", func() error {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: srv.Namespace(),
			Query:     query,
		})
		if err != nil {
			return err
		}
		for _, e := range resp.GetExecutions() {
			if e.GetExecution().GetWorkflowId() == "greet-ada" {
				return nil
			}
		}
		return fmt.Errorf("query %q found %d executions, not greet-ada", query, len(resp.Executions))
	})
}

func TestSearchAttributesRegistered(t *testing.T) {
	srv := temporaldevtest.Start(t, temporaldev.Options{DisableUI: true})
	c := temporaldevtest.Client(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace()})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	for _, name := range []string{
		workflows.SearchAttrStage, workflows.SearchAttrOrg, workflows.SearchAttrTenant,
	} {
		if typ := resp.GetCustomAttributes()[name]; typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s has type %s, want Keyword", name, typ)
		}
	}
	if srv.Namespace() != "default" {
		t.Errorf("namespace is %q, want default", srv.Namespace())
	}
}

func TestUIServesRootPage(t *testing.T) {
	srv := temporaldevtest.Start(t, temporaldev.Options{InMemory: true})
	if srv.UIURL() == "" {
		t.Fatal("UI URL is empty although the UI is enabled")
	}

	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.UIURL() + "/")
	if err != nil {
		t.Fatalf("GET UI root: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET UI root: status %s", resp.Status)
	}
	if !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("UI root page is not HTML: %.200q", body)
	}
}

func TestRestartKeepsWorkflows(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	first, err := temporaldev.Start(ctx, temporaldev.Options{
		DataDir: dir, DisableUI: true, Logger: temporaldevtest.Logger(t),
	})
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	c1, err := first.NewClient(ctx, client.Options{})
	if err != nil {
		_ = first.Stop()
		t.Fatalf("dial first server: %v", err)
	}
	_, err = c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "greet-grace",
		TaskQueue: workflows.TaskQueue,
	}, greetWorkflow, "Grace", true)
	c1.Close()
	if stopErr := first.Stop(); stopErr != nil {
		t.Errorf("stop first server: %v", stopErr)
	}
	if err != nil {
		t.Fatalf("start workflow before restart: %v", err)
	}

	second := temporaldevtest.Start(t, temporaldev.Options{DataDir: dir, DisableUI: true})
	if second.DatabasePath() != first.DatabasePath() {
		t.Fatalf("database %s after restart, want %s", second.DatabasePath(), first.DatabasePath())
	}
	c2 := temporaldevtest.Client(t, second)

	desc, err := c2.DescribeWorkflowExecution(ctx, "greet-grace", "")
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow status after restart is %s, want Running", st)
	}

	startWorker(t, c2)
	if err := c2.SignalWorkflow(ctx, "greet-grace", "", "go", nil); err != nil {
		t.Fatalf("signal workflow after restart: %v", err)
	}
	var got string
	if err := c2.GetWorkflow(ctx, "greet-grace", "").Get(ctx, &got); err != nil {
		t.Fatalf("workflow result after restart: %v", err)
	}
	if got != "hello Grace" {
		t.Fatalf("workflow returned %q after restart, want %q", got, "hello Grace")
	}
}

func TestStartRejectsTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	_, err = temporaldev.Start(context.Background(), temporaldev.Options{
		InMemory: true, FrontendPort: port,
	})
	if err == nil {
		t.Fatal("Start succeeded on a taken frontend port")
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the address %s", err, want)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	cases := map[string]temporaldev.Options{
		"no data folder":   {},
		"both modes":       {InMemory: true, DataDir: t.TempDir()},
		"not loopback":     {InMemory: true, Host: "10.1.2.3"},
		"port range":       {InMemory: true, UIPort: 70000},
		"query in path":    {DataDir: t.TempDir() + "/a?b"},
		"unwritable place": {DataDir: "/proc/onesync-test"},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			srv, err := temporaldev.Start(context.Background(), opts)
			if err == nil {
				_ = srv.Stop()
				t.Fatal("Start accepted bad options")
			}
		})
	}
}
