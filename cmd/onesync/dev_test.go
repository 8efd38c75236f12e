package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/internal/testutil"
)

// devProcess is `onesync dev` running as a subprocess of the test.
type devProcess struct {
	cmd      *exec.Cmd
	stdout   *syncBuffer
	stderr   *syncBuffer
	http     string
	temporal string
	ui       string
	exited   chan struct{}
	exitErr  error
}

// syncBuffer is a bytes.Buffer that the process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs this test binary as `onesync dev` on free ports with dir
// as its data folder, and waits until /readyz answers 200.
func startDev(t *testing.T, dir string) *devProcess {
	t.Helper()
	ports, err := temporaldev.FreePorts("127.0.0.1", 5)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	httpAddr, temporalPort, uiPort := addr(ports[0]), ports[1], ports[2]
	temporalAddr, uiAddr := addr(temporalPort), addr(uiPort)

	p := &devProcess{
		stdout: &syncBuffer{}, stderr: &syncBuffer{},
		http: httpAddr, temporal: temporalAddr, ui: uiAddr,
		exited: make(chan struct{}),
	}
	p.cmd = exec.Command(os.Args[0], "dev",
		"--data-dir", dir,
		"--http-addr", httpAddr,
		"--temporal-port", strconv.Itoa(temporalPort),
		"--temporal-ui-port", strconv.Itoa(uiPort),
		"--graph-addr", addr(ports[3]),
		"--onecloud-addr", addr(ports[4]),
	)
	p.cmd.Env = append(os.Environ(), "ONESYNC_TEST_RUN_MAIN=1")
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start onesync dev: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("onesync dev stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})

	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, _, err := get("http://" + httpAddr + "/readyz")
		if err == nil && code == http.StatusOK {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("onesync dev exited before it was ready: %v\nstderr:\n%s", p.exitErr, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("onesync dev not ready after 2 minutes (last: %d, %v)", code, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit with code 0.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("onesync dev did not exit within a minute of SIGTERM")
	}
	if p.exitErr != nil {
		t.Fatalf("onesync dev exited with %v after SIGTERM; stderr:\n%s", p.exitErr, p.stderr)
	}
	for _, bad := range []string{"panic:", "goroutine ", "DATA RACE"} {
		if strings.Contains(p.stderr.String(), bad) {
			t.Fatalf("onesync dev printed %q while stopping:\n%s", bad, p.stderr)
		}
	}
}

func get(url string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestDevServesAndStopsOnSIGTERM(t *testing.T) {
	p := startDev(t, t.TempDir())

	code, body, err := get("http://" + p.http + "/healthz")
	if err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %v", code, err)
	}
	code, body, err = get("http://" + p.http + "/readyz")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz: %d %s %v", code, body, err)
	}
	code, body, err = get("http://" + p.ui + "/")
	if err != nil || code != http.StatusOK || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("Temporal UI root: %d %v %.100q", code, err, body)
	}

	// The block a person reads names each address. The portal answers a
	// moment before the block is printed, so it is awaited.
	for _, want := range []string{
		"Portal          http://" + p.http,
		"Temporal UI     http://" + p.ui,
		"Temporal gRPC   " + p.temporal,
	} {
		testutil.Eventually(t, 30*time.Second, "the dev block", func() error {
			if !strings.Contains(p.stdout.String(), want) {
				return fmt.Errorf("dev output lacks %q:\n%s", want, p.stdout)
			}
			return nil
		})
	}

	p.stop(t)
}

func TestDevRestartKeepsWorkflows(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A workflow on a task queue no worker polls stays running, so it must
	// be found running after the restart.
	const id = "restart-probe"
	first := startDev(t, dir)
	c := dial(t, ctx, first.temporal)
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: "restart-probe",
	}, "RestartProbe")
	c.Close()
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	first.stop(t)

	second := startDev(t, dir)
	c = dial(t, ctx, second.temporal)
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("the workflow started before the restart is gone: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow status after restart %s, want Running", st)
	}
	second.stop(t)
}

func dial(t *testing.T, ctx context.Context, addr string) client.Client {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: "default",
		Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

// nopLogger keeps the SDK's lines out of the test output.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
