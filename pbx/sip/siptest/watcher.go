package siptest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
)

// The event packages a Watcher subscribes to, and the body types it asks
// for. They repeat pbx/sip's names on purpose: this package must not
// import the publisher it tests.
const (
	EventDialog   = "dialog"
	EventPresence = "presence"

	contentTypeDialogInfo = "application/dialog-info+xml"
	contentTypePIDF       = "application/pidf+xml"
)

// Dialog states of RFC 4235 a busy lamp lights from.
const (
	DialogConfirmed  = "confirmed"
	DialogTerminated = "terminated"
)

// subscribeExpires is the subscription lifetime a Watcher asks for: longer
// than any test, so that it never needs a refresh.
const subscribeExpires = 600

// Notify is one NOTIFY a Watcher received.
type Notify struct {
	// CSeq orders the NOTIFYs of the subscription; Kamailio sends them
	// from several processes, so they may arrive out of order.
	CSeq uint32
	// State is the Subscription-State header.
	State string
	// Body is the NOTIFY's body: dialog-info or PIDF XML.
	Body string
	// At is when the Watcher received it.
	At time.Time
}

// Watcher is a desk phone's view of one extension: it SUBSCRIBEs to an
// event package at a presence server over UDP and records every NOTIFY.
type Watcher struct {
	t      testing.TB
	ext    string
	server string
	domain string
	event  string
	client *sipgo.Client
	conn   net.PacketConn

	mu      sync.Mutex
	notes   []Notify
	changed chan struct{}
}

// NewWatcher subscribes to event (EventDialog or EventPresence) for
// sip:<ext>@<domain> at server (host:port, UDP), fails t when the server
// refuses, and closes the subscription's sockets when t ends.
func NewWatcher(t testing.TB, server, domain, ext, event string) *Watcher {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("watcher"), sipgo.WithUserAgentHostname(domain))
	if err != nil {
		t.Fatalf("watcher user agent: %v", err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatalf("watcher server: %v", err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("watcher socket: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	w := &Watcher{t: t, ext: ext, server: server, domain: domain, event: event, conn: conn,
		changed: make(chan struct{}, 1)}
	srv.OnNotify(w.onNotify)
	go func() { _ = srv.ServeUDP(conn) }()

	// The SUBSCRIBE leaves from an ephemeral socket; its Contact names the
	// listening one, where the NOTIFYs go.
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatalf("watcher client: %v", err)
	}
	w.client = client
	w.subscribe()
	return w
}

func (w *Watcher) onNotify(req *gosip.Request, tx gosip.ServerTransaction) {
	n := Notify{Body: string(req.Body()), At: time.Now()}
	if h := req.CSeq(); h != nil {
		n.CSeq = h.SeqNo
	}
	if h := req.GetHeader("Subscription-State"); h != nil {
		n.State = h.Value()
	}
	w.mu.Lock()
	w.notes = append(w.notes, n)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	_ = tx.Respond(gosip.NewResponseFromRequest(req, 200, "OK", nil))
}

// subscribe sends the SUBSCRIBE and checks it is accepted.
func (w *Watcher) subscribe() {
	w.t.Helper()
	uri := gosip.Uri{Scheme: "sip", User: w.ext, Host: w.domain}
	req := gosip.NewRequest(gosip.SUBSCRIBE, uri)
	req.SetDestination(w.server)
	req.SetTransport("UDP")
	from := &gosip.FromHeader{Address: gosip.Uri{Scheme: "sip", User: "watcher", Host: w.domain},
		Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: uri})
	local := w.conn.LocalAddr().(*net.UDPAddr)
	req.AppendHeader(&gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "watcher",
		Host: "127.0.0.1", Port: local.Port}})
	req.AppendHeader(gosip.NewHeader("Event", w.event))
	accept := contentTypeDialogInfo
	if w.event == EventPresence {
		accept = contentTypePIDF
	}
	req.AppendHeader(gosip.NewHeader("Accept", accept))
	exp := gosip.ExpiresHeader(subscribeExpires)
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

// Last returns the newest NOTIFY, if any: the one with the highest CSeq,
// as a phone orders them. Kamailio sends NOTIFYs from several processes,
// so the initial NOTIFY of a subscription sometimes arrives after the one
// a PUBLISH right after the SUBSCRIBE caused.
func (w *Watcher) Last() (Notify, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.notes) == 0 {
		return Notify{}, false
	}
	newest := w.notes[0]
	for _, n := range w.notes[1:] {
		if n.CSeq >= newest.CSeq {
			newest = n
		}
	}
	return newest, true
}

// Count returns how many NOTIFYs arrived.
func (w *Watcher) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.notes)
}

// WaitDialog waits up to d until the newest NOTIFY shows want as its
// dialog state ("" for no dialog at all) and returns that NOTIFY; t fails
// with every NOTIFY received when none does.
func (w *Watcher) WaitDialog(want string, d time.Duration) Notify {
	w.t.Helper()
	return w.WaitBody(d, "dialog state "+strconv.Quote(want), func(body string) bool {
		got, err := DialogState(body)
		if err != nil {
			w.t.Fatalf("extension %s: %v", w.ext, err)
		}
		return got == want
	})
}

// WaitBody waits up to d until the newest NOTIFY's body satisfies ok and
// returns that NOTIFY; what names the awaited body in the failure.
func (w *Watcher) WaitBody(d time.Duration, what string, ok func(string) bool) Notify {
	w.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if n, has := w.Last(); has && ok(n.Body) {
			return n
		}
		select {
		case <-w.changed:
		case <-deadline.C:
			w.t.Fatalf("extension %s: no NOTIFY with %s within %s; received:\n%s",
				w.ext, what, d, w.dump())
			return Notify{}
		}
	}
}

// dump formats every NOTIFY received, for a failure message.
func (w *Watcher) dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var all strings.Builder
	for i, n := range w.notes {
		fmt.Fprintf(&all, "NOTIFY %d (CSeq %d, Subscription-State: %s):\n%s\n",
			i+1, n.CSeq, n.State, n.Body)
	}
	return all.String()
}

// DialogState is the dialog state a phone lamp shows for a dialog-info
// NOTIFY body: the state of its first dialog element, "" when there is
// none or the body is empty. It fails when the body is not dialog-info.
func DialogState(body string) (string, error) {
	if strings.TrimSpace(body) == "" {
		return "", nil
	}
	var doc struct {
		XMLName xml.Name `xml:"urn:ietf:params:xml:ns:dialog-info dialog-info"`
		Entity  string   `xml:"entity,attr"`
		Dialogs []struct {
			State string `xml:"state"`
		} `xml:"dialog"`
	}
	if err := xml.NewDecoder(bytes.NewReader([]byte(body))).Decode(&doc); err != nil {
		return "", fmt.Errorf("NOTIFY body is not dialog-info XML: %w\n%s", err, body)
	}
	if len(doc.Dialogs) == 0 {
		return "", nil
	}
	return strings.TrimSpace(doc.Dialogs[0].State), nil
}
