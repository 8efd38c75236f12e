package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/setera/onesync/store"
)

// TestMain lets the test binary act as the onesync binary: the dev tests
// start it again as a subprocess with ONESYNC_TEST_RUN_MAIN=1, which runs
// exactly main() with the arguments given.
func TestMain(m *testing.M) {
	if os.Getenv("ONESYNC_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runCmd runs the binary in this process with args and the given
// environment, and returns its exit code, stdout and stderr.
func runCmd(t *testing.T, stdin string, envVars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, &runEnv{
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string {
			if v, ok := envVars[k]; ok {
				return v
			}
			return workerEnv[k]
		},
	})
	return code, stdout.String(), stderr.String()
}

// workerEnv is the Graph and OneCloud configuration every worker test
// needs to get past validation. The addresses are loopback ports nobody
// listens on: no test reaches a real service.
var workerEnv = map[string]string{
	"ONESYNC_GRAPH_CLIENT_ID":         "5f1c9a3e-7b2d-4c8e-a6f0-3d9b1e2c4a57",
	"ONESYNC_GRAPH_CLIENT_SECRET":     "test-secret-not-used",
	"ONESYNC_GRAPH_AUTHORITY":         "http://127.0.0.1:9",
	"ONESYNC_GRAPH_BASE_URL":          "http://127.0.0.1:9/v1.0",
	"ONESYNC_ONECLOUD_URL":            "http://127.0.0.1:9",
	"ONESYNC_ONECLOUD_API_KEY":        "test-key-not-used",
	"ONESYNC_ONECLOUD_SIGNING_SECRET": "test-signing-secret-not-used",
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // in stderr
	}{
		{"no command", nil, nil, "Usage: onesync <command>"},
		{"unknown command", nil, []string{"deploy"}, `unknown command "deploy"`},
		{"staff without add", nil, []string{"staff"}, `unknown command "staff"`},
		{"unknown flag", nil, []string{"worker", "--bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument", nil, []string{"api", "extra"}, `unexpected argument "extra"`},
		{"bad duration flag", nil, []string{"dev", "--shutdown-timeout", "soon"},
			`invalid value "soon" for flag -shutdown-timeout`},
		{"bad duration env", map[string]string{"ONESYNC_SHUTDOWN_TIMEOUT": "soon"},
			[]string{"dev"}, "ONESYNC_SHUTDOWN_TIMEOUT=soon"},
		{"unknown log level", nil, []string{"dev", "--log-level", "loud"},
			`unknown log level "loud"`},
		{"unknown log format", nil, []string{"worker", "--store", "sqlite:x.db", "--log-format", "xml"},
			`--log-format "xml"`},
		{"worker without store", nil, []string{"worker"}, "--store is required"},
		{"bad store", nil, []string{"api", "--store", "mysql://x"}, "want sqlite:<path> or postgres://"},
		{"bad temporal address", nil, []string{"worker", "--store", "sqlite:x.db",
			"--temporal-address", "nowhere"}, `--temporal-address "nowhere"`},
		{"half a client certificate", nil, []string{"worker", "--store", "sqlite:x.db",
			"--temporal-tls-cert", "c.pem"}, "must be given together"},
		{"dev not on loopback", nil, []string{"dev", "--data-dir", t.TempDir(),
			"--http-addr", "0.0.0.0:8080"}, "loopback only"},
		{"data folder not writable", nil, []string{"dev", "--data-dir", "/proc/onesync"},
			`--data-dir "/proc/onesync"`},
		{"staff without email", nil, []string{"staff", "add", "--store", "sqlite:x.db"},
			"--email is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", tc.env, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	code, stdout, _ := runCmd(t, "", nil, "--help")
	if code != exitOK || !strings.Contains(stdout, "staff add") {
		t.Fatalf("--help: exit %d, stdout:\n%s", code, stdout)
	}
	code, _, stderr := runCmd(t, "", nil, "worker", "-h")
	if code != exitOK || !strings.Contains(stderr, "--temporal-api-key [ONESYNC_TEMPORAL_API_KEY]") {
		t.Fatalf("worker -h: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestDevRejectsTakenHTTPPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	code, _, stderr := runCmd(t, "", nil, "dev", "--data-dir", t.TempDir(),
		"--http-addr", l.Addr().String())
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	if !strings.Contains(stderr, l.Addr().String()+" is not available") {
		t.Fatalf("stderr does not name the taken address %s:\n%s", l.Addr(), stderr)
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableTemporalFailsFast(t *testing.T) {
	for _, cmd := range []string{"worker", "api"} {
		t.Run(cmd, func(t *testing.T) {
			addr := closedPort(t)
			args := []string{cmd, "--temporal-address", addr,
				"--store", "sqlite:" + t.TempDir() + "/onesync.db"}
			if cmd == "api" {
				args = append(args, "--http-addr", closedPort(t))
			}

			start := time.Now()
			code, _, stderr := runCmd(t, "", nil, args...)
			took := time.Since(start)

			if code != exitFailed {
				t.Errorf("exit code %d, want %d", code, exitFailed)
			}
			if took > 20*time.Second {
				t.Errorf("took %s to give up; the dial timeout is 5s", took)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("error is %d lines, want one:\n%s", len(lines), stderr)
			}
			if !strings.Contains(stderr, addr) || !strings.Contains(stderr, "unreachable") {
				t.Errorf("error does not say that %s is unreachable:\n%s", addr, stderr)
			}
		})
	}
}

func TestSilentTemporalTimesOut(t *testing.T) {
	// A listener that accepts and never answers stands for a firewall that
	// drops packets: the dial timeout must end the wait.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	start := time.Now()
	code, _, stderr := runCmd(t, "", nil, "worker", "--temporal-address", l.Addr().String(),
		"--temporal-dial-timeout", "2s", "--store", "sqlite:"+t.TempDir()+"/onesync.db")
	took := time.Since(start)

	if code != exitFailed {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	if took < time.Second || took > 20*time.Second {
		t.Errorf("gave up after %s, want about the 2s dial timeout", took)
	}
	if !strings.Contains(stderr, l.Addr().String()) {
		t.Errorf("error does not name %s:\n%s", l.Addr(), stderr)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	var cfg workerConfig
	f := newFlags("worker", "", &bytes.Buffer{})
	cfg.register(f)
	err := f.parse([]string{"--temporal-namespace", "from-flag"}, func(k string) string {
		return map[string]string{
			"ONESYNC_TEMPORAL_NAMESPACE": "from-env",
			"ONESYNC_TEMPORAL_ADDRESS":   "temporal.example:7233",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Namespace != "from-flag" {
		t.Errorf("namespace %q, want the flag's from-flag", cfg.Temporal.Namespace)
	}
	if cfg.Temporal.Address != "temporal.example:7233" {
		t.Errorf("address %q, want the variable's temporal.example:7233", cfg.Temporal.Address)
	}
	if cfg.Temporal.DialTimeout != 5*time.Second {
		t.Errorf("dial timeout %s, want the default 5s", cfg.Temporal.DialTimeout)
	}
}

func TestPrintedConfigurationHidesSecrets(t *testing.T) {
	var cfg workerConfig
	f := newFlags("worker", "", &bytes.Buffer{})
	cfg.register(f)
	env := map[string]string{
		"ONESYNC_TEMPORAL_API_KEY": "tk-very-secret",
		"ONESYNC_STORE":            "postgres://onesync:pg-very-secret@db.internal/onesync?password=q-secret",
	}
	if err := f.parse(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}

	got := map[string]string{}
	for _, fl := range f.fields() {
		got[fl.Key] = fl.String
	}
	printed := strings.Join(values(got), " ")
	for _, secret := range []string{"tk-very-secret", "pg-very-secret", "q-secret"} {
		if strings.Contains(printed, secret) {
			t.Errorf("printed configuration contains the secret %q: %v", secret, got)
		}
	}
	if got["temporal-api-key"] != "set" {
		t.Errorf("temporal-api-key printed as %q, want set", got["temporal-api-key"])
	}
	if !strings.Contains(got["store"], "db.internal/onesync") {
		t.Errorf("store printed as %q, want the host and database kept", got["store"])
	}

	var unset workerConfig
	f2 := newFlags("worker", "", &bytes.Buffer{})
	unset.register(f2)
	_ = f2.parse(nil, func(string) string { return "" })
	for _, fl := range f2.fields() {
		if fl.Key == "temporal-api-key" && fl.String != "unset" {
			t.Errorf("an empty API key is printed as %q, want unset", fl.String)
		}
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestStaffAdd(t *testing.T) {
	path := t.TempDir() + "/onesync.db"
	dsn := "sqlite:" + path
	const pw = "correct horse battery"

	// A path with no database is a typo, not a new deployment.
	code, stdout, stderr := runCmd(t, pw+"\n", nil, "staff", "add", "--store", dsn,
		"--email", "ops@setera.example", "--password-stdin")
	if code != exitUsage || !strings.Contains(stderr, "no OneSync database there") {
		t.Fatalf("staff add on a missing database: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("staff add created a database at a mistyped path")
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	code, stdout, stderr = runCmd(t, pw+"\n", nil, "staff", "add", "--store", dsn,
		"--email", "Ops@Setera.example", "--name", "Ops", "--password-stdin")
	if code != exitOK {
		t.Fatalf("staff add: exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, pw) {
		t.Errorf("the password given on stdin was echoed:\n%s%s", stdout, stderr)
	}

	ctx := context.Background()
	db, err = store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.StaffByEmail(ctx, "ops@setera.example")
	db.Close()
	if err != nil {
		t.Fatalf("the account is not in the store: %v", err)
	}
	if s.Name != "Ops" {
		t.Errorf("name %q, want Ops", s.Name)
	}
	if bcrypt.CompareHashAndPassword([]byte(s.PasswordHash), []byte(pw)) != nil {
		t.Error("the stored hash does not match the password")
	}

	code, _, stderr = runCmd(t, "", nil, "staff", "add", "--store", dsn,
		"--email", "ops@setera.example")
	if code != exitUsage || !strings.Contains(stderr, "exists already") {
		t.Errorf("second add: exit %d, stderr:\n%s", code, stderr)
	}

	code, stdout, stderr = runCmd(t, "", nil, "staff", "add", "--store", dsn,
		"--email", "second@setera.example")
	if code != exitOK || !strings.Contains(stdout, "Password (shown once") {
		t.Errorf("generated password: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	code, _, stderr = runCmd(t, "short\n", nil, "staff", "add", "--store", dsn,
		"--email", "third@setera.example", "--password-stdin")
	if code != exitUsage || !strings.Contains(stderr, "at least "+strconv.Itoa(minStaffPassword)) {
		t.Errorf("short password: exit %d, stderr:\n%s", code, stderr)
	}
}
