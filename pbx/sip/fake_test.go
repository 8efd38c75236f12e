package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// fakeReq is one PUBLISH the fake presence server received.
type fakeReq struct {
	event     string
	ifMatch   string
	expires   int
	body      string
	transport string
}

// answer is what the fake server replies: a status, and for a 2xx the
// Expires it grants (0: the requested one).
type answer struct {
	code    int
	expires int
}

// fakeServer is a tiny presence server on sipgo: it records every PUBLISH,
// answers with numbered ETags, and lets a test script answers and hold
// requests to observe what the publisher does meanwhile.
type fakeServer struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	reqs   []fakeReq
	script func(n int, r fakeReq) answer // nil: 200 for everything
	gate   chan struct{}                 // non-nil: each answer waits for a receive
	got    chan struct{}
}

func newFakeServer(t *testing.T, transport Transport) (*fakeServer, *tls.Config) {
	t.Helper()
	f := &fakeServer{t: t, got: make(chan struct{}, 100)}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnPublish(f.handle)
	t.Cleanup(func() { _ = ua.Close() })

	var clientTLS *tls.Config
	switch transport {
	case UDP:
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.addr = conn.LocalAddr().String()
		go func() { _ = srv.ServeUDP(conn) }()
	case TCP:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.addr = l.Addr().String()
		go func() { _ = srv.ServeTCP(l) }()
	case TLS:
		serverTLS, pool := selfSigned(t)
		l, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
		if err != nil {
			t.Fatal(err)
		}
		f.addr = l.Addr().String()
		go func() { _ = srv.ServeTLS(l) }()
		clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return f, clientTLS
}

func (f *fakeServer) handle(req *gosip.Request, tx gosip.ServerTransaction) {
	r := fakeReq{body: string(req.Body()), transport: req.Transport()}
	if h := req.GetHeader("Event"); h != nil {
		r.event = h.Value()
	}
	if h := req.GetHeader("SIP-If-Match"); h != nil {
		r.ifMatch = h.Value()
	}
	if h := req.GetHeader("Expires"); h != nil {
		r.expires, _ = strconv.Atoi(h.Value())
	}

	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	n := len(f.reqs)
	script, gate := f.script, f.gate
	f.mu.Unlock()
	f.got <- struct{}{}

	if gate != nil {
		<-gate
	}
	a := answer{code: 200}
	if script != nil {
		a = script(n, r)
	}
	res := gosip.NewResponseFromRequest(req, a.code, reasonOf(a.code), nil)
	if a.code/100 == 2 {
		res.AppendHeader(gosip.NewHeader("SIP-ETag", "etag-"+strconv.Itoa(n)))
		exp := r.expires
		if a.expires > 0 {
			exp = a.expires
		}
		res.AppendHeader(gosip.NewHeader("Expires", strconv.Itoa(exp)))
	}
	_ = tx.Respond(res)
}

func reasonOf(code int) string {
	switch code {
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 412:
		return "Conditional Request Failed"
	}
	return "Error"
}

// setScript and setGate change the answers while the server runs.
func (f *fakeServer) setScript(s func(n int, r fakeReq) answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = s
}

func (f *fakeServer) setGate(g chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = g
}

// requests returns a copy of what arrived so far.
func (f *fakeServer) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeReq(nil), f.reqs...)
}

// waitRequests waits until n PUBLISHes arrived.
func (f *fakeServer) waitRequests(n int, d time.Duration) []fakeReq {
	f.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if r := f.requests(); len(r) >= n {
			return r
		}
		select {
		case <-f.got:
		case <-deadline.C:
			f.t.Fatalf("%d PUBLISH(es) arrived within %s, want %d", len(f.requests()), d, n)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "presence test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der},
		PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

func TestPublishOverEachTransport(t *testing.T) {
	for _, tr := range []Transport{UDP, TCP, TLS} {
		t.Run(string(tr), func(t *testing.T) {
			f, clientTLS := newFakeServer(t, tr)
			p := newTestPublisher(t, Config{Server: f.addr, Transport: tr, TLSConfig: clientTLS})

			publish(t, p, "201", presence.Busy)
			r := f.requests()
			if len(r) != 1 {
				t.Fatalf("%d requests, want 1", len(r))
			}
			if r[0].transport != strings.ToUpper(string(tr)) {
				t.Errorf("arrived over %s", r[0].transport)
			}
			if r[0].event != eventDialog || r[0].ifMatch != "" || r[0].expires != 3600 {
				t.Errorf("first PUBLISH = %+v, want a fresh dialog publication for 3600 s", r[0])
			}
			if shownDialogState(t, r[0].body) != dialogConfirmed {
				t.Errorf("body:\n%s", r[0].body)
			}

			publish(t, p, "201", presence.Available)
			r = f.requests()
			if len(r) != 2 || r[1].ifMatch != "etag-1" ||
				shownDialogState(t, r[1].body) != dialogTerminated {
				t.Fatalf("second PUBLISH = %+v, want a modification of etag-1 to terminated", r)
			}
		})
	}
}

// C13: while a PUBLISH is in flight, newer changes wait in one slot and
// only the newest is sent.
func TestPublishCoalescesWhileInFlight(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	gate := make(chan struct{})
	f.setGate(gate)
	p := newTestPublisher(t, Config{Server: f.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	errs := make(chan error, 4)
	go func() { errs <- p.Publish(ctx, pbx.Update{Extension: "301", State: presence.Busy}) }()
	f.waitRequests(1, 10*time.Second) // busy is held by the server
	l := waitLine(t, p, "301")
	for i, s := range []presence.LineState{presence.Available, presence.DoNotDisturb,
		presence.Away} {
		go func() { errs <- p.Publish(ctx, pbx.Update{Extension: "301", State: s}) }()
		// One after the other, so that away is the newest.
		waitFor(t, 10*time.Second, "the change in the slot", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return l.gen == uint64(i+2)
		})
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d PUBLISHes sent while the first was in flight", n)
	}

	close(gate) // the server answers everything from now on
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	r := f.requests()
	if len(r) != 2 {
		t.Fatalf("%d PUBLISHes for 4 changes, want 2 (busy, then the newest)", len(r))
	}
	if shownDialogState(t, r[1].body) != dialogTerminated || r[1].ifMatch != "etag-1" {
		t.Errorf("second PUBLISH = %+v, want the newest state (away: terminated)", r[1])
	}
	if got := l.maxInFlight.Load(); got != 1 {
		t.Errorf("%d PUBLISHes were in flight at once", got)
	}
}

func waitLine(t *testing.T, p *Publisher, ext string) *line {
	t.Helper()
	var l *line
	waitFor(t, 5*time.Second, "the line of "+ext, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		l = p.lines[ext]
		return l != nil
	})
	return l
}

// The server may grant a shorter lifetime than asked: the publisher
// refreshes before that one runs out, with SIP-If-Match and no body.
func TestRefreshHonoursGrantedExpires(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	f.setScript(func(int, fakeReq) answer { return answer{code: 200, expires: 2} })
	p := newTestPublisher(t, Config{Server: f.addr})

	publish(t, p, "401", presence.Busy)
	// Asked for 3600 s, granted 2 s: two refreshes within seconds show the
	// granted lifetime rules.
	r := f.waitRequests(3, 15*time.Second)
	for i, want := range []string{"etag-1", "etag-2"} {
		if r[i+1].ifMatch != want || r[i+1].body != "" || r[i+1].expires != 3600 {
			t.Errorf("refresh %d = %+v, want SIP-If-Match %s, no body, Expires 3600",
				i+1, r[i+1], want)
		}
	}
}

// C14: a 412 to a refresh leads to one fresh PUBLISH with the current
// state, and the refreshes after it carry the new ETag.
func TestRefreshAfter412PublishesAfresh(t *testing.T) {
	f, _ := newFakeServer(t, TCP)
	f.setScript(func(n int, r fakeReq) answer {
		if n == 2 {
			return answer{code: 412}
		}
		return answer{code: 200, expires: 2}
	})
	p := newTestPublisher(t, Config{Server: f.addr, Transport: TCP})
	publish(t, p, "402", presence.DoNotDisturb)

	r := f.waitRequests(4, 15*time.Second)
	if r[1].ifMatch != "etag-1" || r[1].body != "" {
		t.Errorf("request 2 = %+v, want the refresh of etag-1", r[1])
	}
	if r[2].ifMatch != "" || shownDialogState(t, r[2].body) != dialogConfirmed {
		t.Errorf("request 3 = %+v, want a fresh PUBLISH of the current state", r[2])
	}
	if r[3].ifMatch != "etag-3" || r[3].body != "" {
		t.Errorf("request 4 = %+v, want a refresh of the new etag-3", r[3])
	}
}

// A 412 to a change is answered by one fresh PUBLISH of that change.
func TestChangeAfter412PublishesAfresh(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	f.setScript(func(n int, r fakeReq) answer {
		if n == 2 {
			return answer{code: 412}
		}
		return answer{code: 200}
	})
	p := newTestPublisher(t, Config{Server: f.addr})
	publish(t, p, "403", presence.Busy)
	publish(t, p, "403", presence.Available)

	r := f.requests()
	if len(r) != 3 || r[2].ifMatch != "" || shownDialogState(t, r[2].body) != dialogTerminated {
		t.Fatalf("requests = %+v, want the refused change then a fresh terminated", r)
	}
}

func TestPublishErrors(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	f.setScript(func(n int, r fakeReq) answer {
		if strings.Contains(r.body, "sip:404@") {
			return answer{code: 404}
		}
		return answer{code: 200}
	})
	p := newTestPublisher(t, Config{Server: f.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := p.Publish(ctx, pbx.Update{Extension: "404", State: presence.Busy}); !errors.Is(err,
		pbx.ErrExtensionNotFound) {
		t.Errorf("404: %v, want pbx.ErrExtensionNotFound", err)
	}
	for _, u := range []pbx.Update{
		{Extension: "", State: presence.Busy},
		{Extension: "20 1", State: presence.Busy},
		{Extension: "201@evil", State: presence.Busy},
		{Extension: "201", State: "ringing"},
	} {
		if err := p.Publish(ctx, u); err == nil {
			t.Errorf("Publish(%+v) accepted", u)
		}
	}

	// Sequence numbers: older is stale, the same update again is a no-op.
	if err := p.Publish(ctx, pbx.Update{Extension: "205", State: presence.Busy, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	before := len(f.requests())
	if err := p.Publish(ctx, pbx.Update{Extension: "205", State: presence.Busy, Seq: 5}); err != nil {
		t.Errorf("retry of seq 5: %v", err)
	}
	if len(f.requests()) != before {
		t.Errorf("a retry of the same update sent a PUBLISH")
	}
	for _, u := range []pbx.Update{
		{Extension: "205", State: presence.Available, Seq: 4},
		{Extension: "205", State: presence.Available, Seq: 5},
	} {
		if err := p.Publish(ctx, u); !errors.Is(err, pbx.ErrStale) {
			t.Errorf("Publish(seq %d %s) = %v, want pbx.ErrStale", u.Seq, u.State, err)
		}
	}
}

// Publish honours its context while the server keeps the answer back.
func TestPublishHonoursContext(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	gate := make(chan struct{})
	f.setGate(gate)
	defer close(gate)
	p := newTestPublisher(t, Config{Server: f.addr})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, pbx.Update{Extension: "501", State: presence.Busy})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want the context's deadline", err)
	}
}
