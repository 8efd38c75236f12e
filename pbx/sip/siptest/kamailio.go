// Package siptest runs a real Kamailio presence server and a desk phone's
// view of it for tests: StartKamailio starts Kamailio with the repository's
// deploy/kamailio configuration on a free loopback port, and a Watcher
// SUBSCRIBEs to an extension and records every NOTIFY, as a busy lamp
// would. It is test support only: production code must never import it,
// and it never sends anything to a host other than 127.0.0.1.
//
// It does not import pbx/sip, so that the publisher's own tests can use it.
package siptest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/setera/onesync/internal/testutil"
)

// DefaultDomain is the SIP domain of the presentities when
// KamailioOptions.Domain is empty. Nothing resolves it: every request is
// sent to the server's loopback address.
const DefaultDomain = "pbx.test"

// Files of the Debian packages Kamailio needs for the presence server.
const (
	dialogInfoModule = "/usr/lib/x86_64-linux-gnu/kamailio/modules/presence_dialoginfo.so"
	sqliteSchema     = "/usr/share/kamailio/db_sqlite/presence-create.sql"
)

// readyWait bounds the wait for a started Kamailio to answer OPTIONS.
const readyWait = 20 * time.Second

// KamailioOptions configure StartKamailio. The zero value runs the
// configuration without authentication for DefaultDomain.
type KamailioOptions struct {
	// Domain is the SIP domain the subscriber row of Auth belongs to
	// (default DefaultDomain). Kamailio serves any domain; only digest
	// authentication uses it, as the realm.
	Domain string
	// Auth runs the WITH_AUTH variant: every PUBLISH must answer a digest
	// challenge for Username and Password, which are added to the
	// subscriber table.
	Auth     bool
	Username string
	Password string
}

// Kamailio is a presence server run by a test in the foreground, with
// deploy/kamailio/kamailio.cfg and a fresh SQLite database in a temporary
// folder. It listens on UDP and TCP on one port of 127.0.0.1.
type Kamailio struct {
	t      testing.TB
	opts   KamailioOptions
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
	runs   int
}

// RequireKamailio skips t (or fails it under ONESYNC_REQUIRE_ALL=1) when
// a Debian package the Kamailio tests need is missing.
func RequireKamailio(t testing.TB) {
	t.Helper()
	_, errK := exec.LookPath("kamailio")
	testutil.RequireOrSkip(t, errK == nil,
		"kamailio not installed (apt-get install kamailio kamailio-presence-modules "+
			"kamailio-sqlite-modules sqlite3)")
	_, errS := exec.LookPath("sqlite3")
	testutil.RequireOrSkip(t, errS == nil, "sqlite3 not installed (apt-get install sqlite3)")
	_, errP := os.Stat(dialogInfoModule)
	testutil.RequireOrSkip(t, errP == nil,
		"kamailio presence modules missing (apt-get install kamailio-presence-modules)")
	_, errD := os.Stat(sqliteSchema)
	testutil.RequireOrSkip(t, errD == nil,
		"kamailio sqlite schema missing (apt-get install kamailio-sqlite-modules)")
}

// StartKamailio runs a presence server on a free 127.0.0.1 port and stops
// it when t ends. It skips t when Kamailio is not installed (see
// RequireKamailio).
func StartKamailio(t testing.TB, o KamailioOptions) *Kamailio {
	t.Helper()
	RequireKamailio(t)
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Auth && (o.Username == "" || o.Password == "") {
		t.Fatal("siptest: Auth needs a Username and a Password")
	}

	k := &Kamailio{t: t, opts: o, dir: t.TempDir(), port: FreePort(t)}
	k.start()
	t.Cleanup(k.Stop)
	return k
}

// Addr is the server's host:port, for sip.Config.Server and NewWatcher.
func (k *Kamailio) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))
}

// Port is the UDP and TCP port the server listens on.
func (k *Kamailio) Port() int {
	return k.port
}

// RestartFresh stops Kamailio and starts it again on the same port with an
// empty database: it forgets every publication and subscription, as after
// a crash.
func (k *Kamailio) RestartFresh() {
	k.t.Helper()
	k.Stop()
	k.start()
}

// Stop ends the Kamailio process group (SIGTERM, then SIGKILL after 10 s)
// and, when the test failed, logs the end of Kamailio's log. It is safe to
// call twice; StartKamailio calls it when the test ends.
func (k *Kamailio) Stop() {
	if k.cmd == nil {
		return
	}
	pid := k.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-k.exited
	}
	k.cmd = nil
	_ = k.logf.Close()
	if k.t.Failed() {
		k.t.Logf("kamailio log:\n%s", k.LogTail())
	}
}

// LogTail returns the last few kilobytes of the current run's log.
func (k *Kamailio) LogTail() string {
	if k.logf == nil {
		return ""
	}
	b, err := os.ReadFile(k.logf.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// start creates a fresh database and starts Kamailio on k.port, waiting
// until it answers OPTIONS.
func (k *Kamailio) start() {
	t := k.t
	t.Helper()
	k.runs++
	db := filepath.Join(k.dir, fmt.Sprintf("presence-%d.sqlite", k.runs))
	k.initDB(db)

	run := filepath.Join(k.dir, fmt.Sprintf("run-%d", k.runs))
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatalf("kamailio run folder: %v", err)
	}
	listen := k.Addr()
	args := []string{
		"-DD", "-E", // stay in the foreground, log to stderr
		"-f", RepoFile(t, "deploy/kamailio/kamailio.cfg"),
		"-Y", run,
		"-A", "LISTEN_UDP=udp:" + listen,
		"-A", "LISTEN_TCP=tcp:" + listen,
		"-A", `DBURL="sqlite://` + db + `"`,
	}
	if k.opts.Auth {
		args = append(args, "-A", "WITH_AUTH")
	}
	logf, err := os.Create(filepath.Join(k.dir, fmt.Sprintf("kamailio-%d.log", k.runs)))
	if err != nil {
		t.Fatalf("kamailio log file: %v", err)
	}
	k.logf = logf

	cmd := exec.Command("kamailio", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Stop ends the children it forks too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	k.cmd = cmd
	k.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(k.exited)
	}()

	if err := k.waitReady(readyWait); err != nil {
		k.Stop()
		t.Fatalf("kamailio did not come up: %v\n%s", err, k.LogTail())
	}
}

// initDB creates the presence database with deploy/kamailio/init-db.sh
// and, for Auth, adds the subscriber row.
func (k *Kamailio) initDB(db string) {
	t := k.t
	t.Helper()
	args := []string{db}
	if k.opts.Auth {
		args = append(args, "--auth")
	}
	out, err := exec.Command(RepoFile(t, "deploy/kamailio/init-db.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("init-db.sh: %v\n%s", err, out)
	}
	if !k.opts.Auth {
		return
	}
	q := fmt.Sprintf("INSERT INTO subscriber (username, domain, password) VALUES (%s, %s, %s)",
		sqlQuote(k.opts.Username), sqlQuote(k.opts.Domain), sqlQuote(k.opts.Password))
	if out, err := exec.Command("sqlite3", db, q).CombinedOutput(); err != nil {
		t.Fatalf("add subscriber: %v\n%s", err, out)
	}
}

// waitReady polls with OPTIONS until Kamailio answers 200 or d runs out.
func (k *Kamailio) waitReady(d time.Duration) error {
	ua, err := sipgo.NewUA()
	if err != nil {
		return fmt.Errorf("user agent: %w", err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua)
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}

	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-k.exited:
			return errors.New("kamailio exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		req := gosip.NewRequest(gosip.OPTIONS, gosip.Uri{Scheme: "sip", Host: k.opts.Domain})
		req.SetDestination(k.Addr())
		req.SetTransport("UDP")
		res, err := client.Do(ctx, req)
		cancel()
		if err == nil && res.StatusCode == 200 {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not an assertion
	}
	return errors.New("no answer to OPTIONS before the deadline")
}

// RepoFile returns the absolute path of rel, a path inside the repository,
// found from this source file's place in it.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("siptest: cannot locate the repository")
	}
	for dir := filepath.Dir(here); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(rel))
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("siptest: no go.mod above " + here)
		}
	}
}

// FreePort picks below Linux's ephemeral range (32768-60999): the
// kernel hands out source ports from there, so a port picked there might
// be taken by an outgoing connection before Kamailio binds it, or before
// a restart binds it again.
const (
	pickLow  = 20000
	pickHigh = 32767
)

// FreePort returns a port free on 127.0.0.1 for both UDP and TCP, for a
// SIP server a test starts, such as a Kamailio run beside `onesync dev`.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := pickLow + rand.IntN(pickHigh-pickLow+1)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", addr)
		_ = u.Close()
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatal("siptest: no port free for both UDP and TCP on 127.0.0.1")
	return 0
}

// sqlQuote quotes s as an SQL string literal.
func sqlQuote(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
