package sip

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/setera/onesync/internal/testutil"
)

// testDomain is the SIP domain of the presentities in the tests. Nothing
// resolves it: every request is sent to the server's loopback address.
const testDomain = "pbx.test"

// kamailio is a Kamailio presence server run by a test in the foreground,
// with deploy/kamailio/kamailio.cfg and a fresh SQLite database in a temp
// folder.
type kamailio struct {
	t      *testing.T
	dir    string
	port   int
	auth   bool
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
	runs   int
}

// repoFile returns the path of a file of the repository from this test.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(here), "..", "..", rel)
}

// requireKamailio skips (or fails under ONESYNC_REQUIRE_ALL=1) when the
// Debian packages the tests need are missing.
func requireKamailio(t *testing.T) {
	t.Helper()
	_, errK := exec.LookPath("kamailio")
	testutil.RequireOrSkip(t, errK == nil,
		"kamailio not installed (apt-get install kamailio kamailio-presence-modules "+
			"kamailio-sqlite-modules sqlite3)")
	_, errS := exec.LookPath("sqlite3")
	testutil.RequireOrSkip(t, errS == nil, "sqlite3 not installed (apt-get install sqlite3)")
	_, errP := os.Stat("/usr/lib/x86_64-linux-gnu/kamailio/modules/presence_dialoginfo.so")
	testutil.RequireOrSkip(t, errP == nil,
		"kamailio presence modules missing (apt-get install kamailio-presence-modules)")
	_, errD := os.Stat("/usr/share/kamailio/db_sqlite/presence-create.sql")
	testutil.RequireOrSkip(t, errD == nil,
		"kamailio sqlite schema missing (apt-get install kamailio-sqlite-modules)")
}

// startKamailio runs a presence server on a free 127.0.0.1 port (UDP and
// TCP) and stops it when the test ends. With auth it runs the WITH_AUTH
// variant and adds the subscriber user/password.
func startKamailio(t *testing.T, auth bool, user, password string) *kamailio {
	t.Helper()
	requireKamailio(t)

	k := &kamailio{t: t, dir: t.TempDir(), port: freePort(t), auth: auth}
	k.start(user, password)
	t.Cleanup(k.stop)
	return k
}

// addr is the server's host:port.
func (k *kamailio) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))
}

// start creates a fresh database and starts Kamailio on k.port, waiting
// until it answers OPTIONS.
func (k *kamailio) start(user, password string) {
	t := k.t
	t.Helper()
	k.runs++
	db := filepath.Join(k.dir, fmt.Sprintf("presence-%d.sqlite", k.runs))

	args := []string{db}
	if k.auth {
		args = append(args, "--auth")
	}
	out, err := exec.Command(repoFile(t, "deploy/kamailio/init-db.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("init-db.sh: %v\n%s", err, out)
	}
	if k.auth {
		q := fmt.Sprintf("INSERT INTO subscriber (username, domain, password) VALUES ('%s', '%s', '%s')",
			user, testDomain, password)
		if out, err := exec.Command("sqlite3", db, q).CombinedOutput(); err != nil {
			t.Fatalf("add subscriber: %v\n%s", err, out)
		}
	}

	run := filepath.Join(k.dir, fmt.Sprintf("run-%d", k.runs))
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(k.port)
	cmdArgs := []string{
		"-DD", "-E", // stay in the foreground, log to stderr
		"-f", repoFile(t, "deploy/kamailio/kamailio.cfg"),
		"-Y", run,
		"-A", "LISTEN_UDP=udp:" + listen,
		"-A", "LISTEN_TCP=tcp:" + listen,
		"-A", `DBURL="sqlite://` + db + `"`,
	}
	if k.auth {
		cmdArgs = append(cmdArgs, "-A", "WITH_AUTH")
	}
	logf, err := os.Create(filepath.Join(k.dir, fmt.Sprintf("kamailio-%d.log", k.runs)))
	if err != nil {
		t.Fatal(err)
	}
	k.logf = logf
	cmd := exec.Command("kamailio", cmdArgs...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that stop ends the children it forks too.
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

	if err := k.waitReady(20 * time.Second); err != nil {
		k.stop()
		t.Fatalf("kamailio did not come up: %v\n%s", err, k.logTail())
	}
}

// waitReady polls with OPTIONS until Kamailio answers or the deadline.
func (k *kamailio) waitReady(d time.Duration) error {
	ua, err := sipgo.NewUA()
	if err != nil {
		return err
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua)
	if err != nil {
		return err
	}

	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-k.exited:
			return errors.New("kamailio exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		req := gosip.NewRequest(gosip.OPTIONS, gosip.Uri{Scheme: "sip", Host: testDomain})
		req.SetDestination(k.addr())
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

// stop ends the Kamailio process group (SIGTERM, then SIGKILL).
func (k *kamailio) stop() {
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
		k.t.Logf("kamailio log:\n%s", k.logTail())
	}
}

// restartFresh stops Kamailio and starts it again on the same port with an
// empty database: it forgets every publication and subscription.
func (k *kamailio) restartFresh(user, password string) {
	k.t.Helper()
	k.stop()
	k.start(user, password)
}

func (k *kamailio) logTail() string {
	b, err := os.ReadFile(k.logf.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// freePort finds a port free on 127.0.0.1 for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = u.Close()
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatal("no free port for UDP and TCP")
	return 0
}

// notify is one NOTIFY a watcher received.
type notify struct {
	cseq  uint32
	state string // Subscription-State
	body  string
}

// watcher is a phone's view of one extension: it SUBSCRIBEs to an event
// package and records every NOTIFY.
type watcher struct {
	t      *testing.T
	ext    string
	server string
	event  string
	ua     *sipgo.UserAgent
	client *sipgo.Client
	conn   net.PacketConn

	mu      sync.Mutex
	notes   []notify
	changed chan struct{}
}

// newWatcher subscribes to event for ext at server (UDP) and closes the
// subscription's sockets when the test ends.
func newWatcher(t *testing.T, server, ext, event string) *watcher {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("watcher"), sipgo.WithUserAgentHostname(testDomain))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{t: t, ext: ext, server: server, event: event, ua: ua, conn: conn,
		changed: make(chan struct{}, 1)}
	srv.OnNotify(func(req *gosip.Request, tx gosip.ServerTransaction) {
		n := notify{body: string(req.Body())}
		if h := req.CSeq(); h != nil {
			n.cseq = h.SeqNo
		}
		if h := req.GetHeader("Subscription-State"); h != nil {
			n.state = h.Value()
		}
		w.mu.Lock()
		w.notes = append(w.notes, n)
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
		_ = tx.Respond(gosip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = srv.ServeUDP(conn) }()

	// The SUBSCRIBE leaves from an ephemeral socket; its Contact names the
	// listening one, where the NOTIFYs go.
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	w.client = client
	t.Cleanup(func() { _ = ua.Close() })

	w.subscribe()
	return w
}

// subscribe sends the SUBSCRIBE and checks it is accepted.
func (w *watcher) subscribe() {
	w.t.Helper()
	uri := gosip.Uri{Scheme: "sip", User: w.ext, Host: testDomain}
	req := gosip.NewRequest(gosip.SUBSCRIBE, uri)
	req.SetDestination(w.server)
	req.SetTransport("UDP")
	from := &gosip.FromHeader{Address: gosip.Uri{Scheme: "sip", User: "watcher", Host: testDomain},
		Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: uri})
	local := w.conn.LocalAddr().(*net.UDPAddr)
	req.AppendHeader(&gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "watcher",
		Host: "127.0.0.1", Port: local.Port}})
	req.AppendHeader(gosip.NewHeader("Event", w.event))
	accept := contentTypeDialogInfo
	if w.event == eventPresence {
		accept = contentTypePIDF
	}
	req.AppendHeader(gosip.NewHeader("Accept", accept))
	exp := gosip.ExpiresHeader(600)
	req.AppendHeader(&exp)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := w.client.Do(ctx, req)
	if err != nil {
		w.t.Fatalf("SUBSCRIBE %s: %v", w.ext, err)
	}
	if !res.IsSuccess() {
		w.t.Fatalf("SUBSCRIBE %s: %d %s", w.ext, res.StatusCode, res.Reason)
	}
}

// last returns the newest NOTIFY, if any: the one with the highest CSeq,
// as a phone orders them. Kamailio sends NOTIFYs from several processes,
// so the initial NOTIFY of a subscription sometimes arrives after the one
// a PUBLISH right after the SUBSCRIBE caused (seen in these tests).
func (w *watcher) last() (notify, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.notes) == 0 {
		return notify{}, false
	}
	newest := w.notes[0]
	for _, n := range w.notes[1:] {
		if n.cseq >= newest.cseq {
			newest = n
		}
	}
	return newest, true
}

// count returns how many NOTIFYs arrived.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.notes)
}

// waitDialog waits until the newest NOTIFY shows want as its dialog state
// ("" for no dialog at all) and returns its body.
func (w *watcher) waitDialog(want string, d time.Duration) string {
	w.t.Helper()
	return w.waitBody(d, "dialog state "+strconv.Quote(want), func(body string) bool {
		return shownDialogState(w.t, body) == want
	})
}

// waitBody waits until the newest NOTIFY body satisfies ok.
func (w *watcher) waitBody(d time.Duration, what string, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if n, has := w.last(); has && ok(n.body) {
			return n.body
		}
		select {
		case <-w.changed:
		case <-deadline.C:
			w.mu.Lock()
			var all strings.Builder
			for i, n := range w.notes {
				fmt.Fprintf(&all, "NOTIFY %d (CSeq %d, Subscription-State: %s):\n%s\n",
					i+1, n.cseq, n.state, n.body)
			}
			w.mu.Unlock()
			w.t.Fatalf("extension %s: no NOTIFY with %s within %s; received:\n%s",
				w.ext, what, d, all.String())
			return ""
		}
	}
}

// shownDialogState is the dialog state a phone lamp shows for a NOTIFY
// body: the state of its first dialog element, "" when there is none.
func shownDialogState(t *testing.T, body string) string {
	t.Helper()
	if strings.TrimSpace(body) == "" {
		return ""
	}
	var doc struct {
		XMLName xml.Name `xml:"urn:ietf:params:xml:ns:dialog-info dialog-info"`
		Entity  string   `xml:"entity,attr"`
		Dialogs []struct {
			State string `xml:"state"`
		} `xml:"dialog"`
	}
	if err := xml.NewDecoder(bytes.NewReader([]byte(body))).Decode(&doc); err != nil {
		t.Fatalf("NOTIFY body is not dialog-info XML: %v\n%s", err, body)
	}
	if len(doc.Dialogs) == 0 {
		return ""
	}
	return strings.TrimSpace(doc.Dialogs[0].State)
}
