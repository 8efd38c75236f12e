package sip

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/sip/siptest"
	"github.com/setera/onesync/presence"
)

// notifyWait bounds every wait for a NOTIFY: generous, as the machine may
// be loaded; the tests poll and never sleep as an assertion.
const notifyWait = 15 * time.Second

func newTestPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = testDomain
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func publish(t *testing.T, p *Publisher, ext string, s presence.LineState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Publish(ctx, pbx.Update{Org: "org-1", Extension: ext, State: s}); err != nil {
		t.Fatalf("Publish %s %s: %v", ext, s, err)
	}
}

func lineOf(t *testing.T, p *Publisher, ext string) *line {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines[ext]
	if l == nil {
		t.Fatalf("no line for %s", ext)
	}
	return l
}

// A desk phone that watches an extension sees its lamp go red when the
// user is busy and dark again when the user is free, over UDP and TCP.
func TestKamailioBusyThenFree(t *testing.T) {
	k := siptest.StartKamailio(t, siptest.KamailioOptions{})

	for _, tc := range []struct {
		transport Transport
		ext       string
	}{{UDP, "201"}, {TCP, "202"}} {
		t.Run(string(tc.transport), func(t *testing.T) {
			p := newTestPublisher(t, Config{Server: k.Addr(), Transport: tc.transport})
			w := siptest.NewWatcher(t, k.Addr(), testDomain, tc.ext, eventDialog)

			publish(t, p, tc.ext, presence.Busy)
			body := w.WaitDialog(dialogConfirmed, notifyWait).Body
			if want := "sip:" + tc.ext + "@" + testDomain; !containsEntity(body, want) {
				t.Errorf("NOTIFY entity is not %s:\n%s", want, body)
			}

			publish(t, p, tc.ext, presence.Available)
			w.WaitDialog(dialogTerminated, notifyWait)

			publish(t, p, tc.ext, presence.DoNotDisturb)
			w.WaitDialog(dialogConfirmed, notifyWait)
		})
	}
}

// C13: busy, available, busy within 100 ms ends with the lamp red, and the
// publisher never has two PUBLISHes for the extension in flight.
func TestKamailioCoalescesToNewest(t *testing.T) {
	k := siptest.StartKamailio(t, siptest.KamailioOptions{})
	p := newTestPublisher(t, Config{Server: k.Addr()})
	const ext = "301"
	w := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	start := time.Now()
	for i, s := range []presence.LineState{presence.Busy, presence.Available, presence.Busy} {
		go func() {
			errs <- p.Publish(ctx, pbx.Update{Extension: ext, State: s, Seq: int64(i + 1)})
		}()
		time.Sleep(30 * time.Millisecond) // spread the three changes over ~60 ms
	}
	if spread := time.Since(start); spread > 150*time.Millisecond {
		t.Logf("the three changes took %s to issue (loaded machine)", spread)
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}

	w.WaitDialog(dialogConfirmed, notifyWait)
	// A phone that subscribes now gets the server's final state.
	late := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)
	late.WaitDialog(dialogConfirmed, notifyWait)

	l := lineOf(t, p, ext)
	if got := l.maxInFlight.Load(); got != 1 {
		t.Errorf("at most %d PUBLISHes were in flight at once for %s, want 1", got, ext)
	}
	// Without coalescing: busy, free, busy and the removal of the ended
	// dialog's publication. Fewer when changes collapsed.
	if sent := l.sent.Load(); sent > 4 {
		t.Errorf("%d PUBLISHes sent for 3 changes", sent)
	} else {
		t.Logf("%d PUBLISH(es) sent for 3 changes", sent)
	}
}

// C14: the server forgets the publication (restart with an empty
// database); the next refresh gets an error answer and one fresh PUBLISH
// puts the current state back.
func TestKamailioRefreshAfterRestartRecovers(t *testing.T) {
	k := siptest.StartKamailio(t, siptest.KamailioOptions{})
	// A short lifetime makes the refresh come within seconds.
	p := newTestPublisher(t, Config{Server: k.Addr(), Expires: 8 * time.Second})
	const ext = "401"
	w := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)

	publish(t, p, ext, presence.Busy)
	w.WaitDialog(dialogConfirmed, notifyWait)

	l := lineOf(t, p, ext)
	firstETag := l.etagOf(p, eventDialog)
	if firstETag == "" {
		t.Fatal("no SIP-ETag stored after the first PUBLISH")
	}
	// A plain refresh keeps the publication and updates the ETag.
	waitFor(t, 20*time.Second, "a refresh", func() bool { return l.sent.Load() >= 2 })
	waitFor(t, 10*time.Second, "the refreshed ETag", func() bool {
		e := l.etagOf(p, eventDialog)
		return e != "" && e != firstETag
	})

	k.RestartFresh()
	w2 := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)
	// The fresh server holds nothing for the extension...
	w2.WaitDialog("", notifyWait)
	before := l.sent.Load()
	// ...until the publisher's next refresh is refused and it publishes
	// the current state afresh.
	w2.WaitDialog(dialogConfirmed, 30*time.Second)
	if l.sent.Load() < before+2 {
		t.Errorf("expected a refused refresh and a fresh PUBLISH, sent %d", l.sent.Load()-before)
	}
}

// C15: when the sync ends, every line the publisher set busy (or dnd) is
// cleared, and lines it left free get no PUBLISH.
func TestKamailioClearAllClearsBusyLines(t *testing.T) {
	k := siptest.StartKamailio(t, siptest.KamailioOptions{})
	p := newTestPublisher(t, Config{Server: k.Addr(), Transport: TCP})

	busy := map[string]presence.LineState{"501": presence.Busy, "502": presence.Busy,
		"503": presence.DoNotDisturb}
	watchers := map[string]*siptest.Watcher{}
	for ext, s := range busy {
		watchers[ext] = siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)
		publish(t, p, ext, s)
	}
	publish(t, p, "504", presence.Available)
	for _, w := range watchers {
		w.WaitDialog(dialogConfirmed, notifyWait)
	}
	freeSent := lineOf(t, p, "504").sent.Load()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.ClearAll(ctx); err != nil {
		t.Fatalf("ClearAll: %v", err)
	}
	for _, w := range watchers {
		w.WaitDialog(dialogTerminated, notifyWait)
	}
	if got := lineOf(t, p, "504").sent.Load(); got != freeSent {
		t.Errorf("ClearAll sent %d PUBLISH(es) for a line that was free", got-freeSent)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Publish(ctx, pbx.Update{Extension: "501", State: presence.Busy}); err != ErrClosed {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}

// With the WITH_AUTH variant the server challenges every PUBLISH; the
// publisher answers with digest credentials, and wrong or missing ones
// fail with the server's answer.
func TestKamailioDigestAuth(t *testing.T) {
	const user, password = "onesync", "s3cret-for-this-test"
	k := siptest.StartKamailio(t, siptest.KamailioOptions{Auth: true,
		Username: user, Password: password})
	const ext = "601"
	w := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventDialog)

	p := newTestPublisher(t, Config{Server: k.Addr(), Username: user, Password: password})
	publish(t, p, ext, presence.Busy)
	w.WaitDialog(dialogConfirmed, notifyWait)

	for name, cfg := range map[string]Config{
		"wrong password": {Server: k.Addr(), Username: user, Password: "wrong"},
		"no credentials": {Server: k.Addr()},
	} {
		t.Run(name, func(t *testing.T) {
			bad := newTestPublisher(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := bad.Publish(ctx, pbx.Update{Extension: ext, State: presence.Available})
			var se *StatusError
			// Kamailio challenges anything but REGISTER with 407, and
			// challenges again when the credentials are wrong.
			if !asStatus(err, &se) || (se.Code != 401 && se.Code != 403 && se.Code != 407) {
				t.Fatalf("Publish = %v, want a 401, 403 or 407 StatusError", err)
			}
		})
	}
	// The refused publishers changed nothing.
	if got := shownDialogState(t, mustLast(t, w).Body); got != dialogConfirmed {
		t.Errorf("after refused PUBLISHes the lamp shows %q", got)
	}
}

// With PublishPresence the presence package carries the RPID activity.
func TestKamailioPresencePackage(t *testing.T) {
	k := siptest.StartKamailio(t, siptest.KamailioOptions{})
	p := newTestPublisher(t, Config{Server: k.Addr(), PublishPresence: true})
	const ext = "701"
	w := siptest.NewWatcher(t, k.Addr(), testDomain, ext, eventPresence)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := p.Publish(ctx, pbx.Update{Extension: ext, State: presence.Busy, Reason: "InACall"})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	w.WaitBody(notifyWait, "activity on-the-phone", func(b string) bool {
		return containsAll(b, "on-the-phone", "<basic>open</basic>")
	})

	publish(t, p, ext, presence.Away)
	w.WaitBody(notifyWait, "activity away", func(b string) bool {
		return containsAll(b, "away") && !containsAll(b, "on-the-phone")
	})
}
