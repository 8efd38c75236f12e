// Package sip publishes OneSync line states to a SIP presence server, so
// that the busy lamps of desk phones follow Teams.
//
// For each extension it sends PUBLISH requests (RFC 3903) for the dialog
// event package (RFC 4235: a dialog in state confirmed while the line is
// busy, terminated when it is free) and, when configured, for the presence
// package (PIDF, RFC 3863, with RPID activities, RFC 4480). The presence
// server (Kamailio, OpenSIPS, a PBX) fans them out to every phone that
// SUBSCRIBEd to the extension.
//
// Each extension has one worker goroutine and one latest-wins slot: PUBLISH
// requests for one extension go one at a time, and changes that arrive
// while one is in flight collapse into the newest. The worker keeps every
// publication alive by refreshing it (SIP-If-Match, no body) before the
// lifetime the server granted runs out, and answers a 412 with one fresh
// PUBLISH of the current state.
//
// The package has no directory: SIP presence servers list no extensions, so
// OneSync takes them from the CSV directory kept in the store.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// ErrClosed is returned by Publish and ClearAll after Close.
var ErrClosed = errors.New("sip: publisher closed")

// StatusError is a final non-2xx answer of the presence server to a
// PUBLISH. A 404 unwraps to pbx.ErrExtensionNotFound.
type StatusError struct {
	Event  string
	Code   int
	Reason string
}

// Error describes the answer.
func (e *StatusError) Error() string {
	return fmt.Sprintf("sip: PUBLISH %s answered %d %s", e.Event, e.Code, e.Reason)
}

// Unwrap maps 404 Not Found to pbx.ErrExtensionNotFound: the server does
// not know the presentity, so the extension's link is broken.
func (e *StatusError) Unwrap() error {
	if e.Code == gosip.StatusNotFound {
		return pbx.ErrExtensionNotFound
	}
	return nil
}

// Publisher sends the line state of extensions to a SIP presence server. It
// implements pbx.Publisher. Make one with New; it is safe for concurrent
// use.
//
// On a clean shutdown call ClearAll first, so that no lamp stays red while
// the publications wait to expire, then Close.
type Publisher struct {
	cfg       Config
	log       *zap.Logger
	transport string // upper case, as sipgo names transports
	ua        *sipgo.UserAgent
	client    *sipgo.Client

	// ctx ends when Close is called; every PUBLISH is bound to it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	lines  map[string]*line
}

// line is one extension: the latest-wins slot Publish fills (guarded by
// Publisher.mu) and the publications its worker owns.
type line struct {
	ext    string
	entity string        // sip:<ext>@<domain>
	wake   chan struct{} // capacity 1: "the slot changed"

	// Guarded by Publisher.mu.
	want           presence.LineState // newest requested state
	reason         string
	gen            uint64             // bumped by every request
	doneGen        uint64             // newest gen the worker has finished
	seq            int64              // highest pbx.Update.Seq seen
	accepted       presence.LineState // newest state the server accepted
	acceptedReason string
	waiters        []waiter
	etags          map[string]string // event → SIP-ETag held, for the tests

	// Owned by the worker goroutine.
	pubs          []*publication
	dialogVersion uint64 // version of the last dialog-info body sent
	dialogPeriod  uint64 // busy periods so far; names the dialog
	failed        bool   // the last attempt failed: retry at retryAt
	backoff       time.Duration
	retryAt       time.Time

	// Instrumentation read by the tests: PUBLISHes in flight now, the most
	// ever in flight at once, and how many were sent.
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	sent        atomic.Int64
}

// waiter is a Publish call waiting for its request (or a newer one) to be
// finished.
type waiter struct {
	gen uint64
	ch  chan error // capacity 1
}

// publication is one event package's publication for a line.
type publication struct {
	event     string
	etag      string    // SIP-ETag of the last 2xx; "" when none is held
	key       string    // what the server holds, to skip needless PUBLISHes
	refreshAt time.Time // when to refresh; zero when etag is ""
}

// New checks cfg and returns a Publisher ready to send; it opens no socket
// until the first PUBLISH.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}

	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent("OneSync"),
		sipgo.WithUserAgentHostname(cfg.Domain),
	}
	if cfg.transport() == TLS {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConfig(cfg)))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, fmt.Errorf("create sip user agent: %w", err)
	}
	client, err := sipgo.NewClient(ua)
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("create sip client: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		cfg:       cfg,
		log:       log.With(zap.String("component", "sip-publisher")),
		transport: map[Transport]string{UDP: "UDP", TCP: "TCP", TLS: "TLS"}[cfg.transport()],
		ua:        ua,
		client:    client,
		ctx:       ctx,
		cancel:    cancel,
		lines:     make(map[string]*line),
	}
	p.log.Info("sip publisher ready", zap.Stringer("config", cfg))
	return p, nil
}

// tlsConfig is the client TLS configuration: the caller's, or system roots
// with TLS 1.2 or later, always with a server name to verify.
func tlsConfig(cfg Config) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		c = cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		host, _, _ := net.SplitHostPort(cfg.Server) // checked by Validate
		c.ServerName = host
	}
	return c
}

// Publish sets the line state of u.Extension. It returns once the newest
// state asked for that extension was accepted by the server (nil) or failed
// (the error), or when ctx ends. Changes that arrive while a PUBLISH for the
// extension is in flight are coalesced: only the newest is sent.
//
// An update with a Seq lower than one already seen for the extension (or
// the same Seq with another state) returns pbx.ErrStale; the same update
// twice is published once. u.Org is not part of the presentity: one
// Publisher serves one SIP domain.
func (p *Publisher) Publish(ctx context.Context, u pbx.Update) error {
	if !ValidExtension(u.Extension) {
		return fmt.Errorf("sip publish: extension %q is not a valid SIP user part", u.Extension)
	}
	if !u.State.Valid() {
		return fmt.Errorf("sip publish: unknown line state %q", u.State)
	}

	ch, err := p.request(u.Extension, u.State, u.Reason, u.Seq)
	if err != nil {
		return err
	}
	return wait(ctx, ch)
}

// ClearAll publishes "available" (dialog terminated, no activity) for every
// extension whose line it set to anything but available or offline, so
// that no lamp stays red once OneSync stops syncing: on disconnect, on
// revocation and on a clean shutdown. It waits for every clearing PUBLISH
// (or ctx) and returns their errors joined.
func (p *Publisher) ClearAll(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	type pending struct {
		ext string
		ch  chan error
	}
	var all []pending
	for ext, l := range p.lines {
		if !lit(l.want) && !lit(l.accepted) {
			continue
		}
		all = append(all, pending{ext, p.enqueueLocked(l, presence.Available, "")})
	}
	p.mu.Unlock()

	p.log.Info("clearing published lines", zap.Int("lines", len(all)))
	var errs []error
	for _, c := range all {
		if err := wait(ctx, c.ch); err != nil {
			errs = append(errs, fmt.Errorf("clear extension %s: %w", c.ext, err))
		}
	}
	return errors.Join(errs...)
}

// lit reports whether a line state shows anything on colleagues' phones
// that must not outlive the sync: a red lamp or an activity.
func lit(s presence.LineState) bool {
	return s != "" && s != presence.Available && s != presence.Offline
}

// Close stops every worker and refresh timer and closes the sockets. The
// publications stay on the server until their lifetime runs out, so call
// ClearAll first on a clean shutdown. Pending Publish calls return
// ErrClosed.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	p.cancel()
	p.wg.Wait()

	p.mu.Lock()
	for _, l := range p.lines {
		for _, w := range l.waiters {
			w.ch <- ErrClosed
		}
		l.waiters = nil
	}
	p.mu.Unlock()

	if err := p.ua.Close(); err != nil {
		return fmt.Errorf("close sip user agent: %w", err)
	}
	return nil
}

// request fills the extension's latest-wins slot and returns the channel
// its result arrives on, starting the extension's worker on first use.
func (p *Publisher) request(ext string, s presence.LineState, reason string, seq int64) (
	chan error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}

	l := p.lines[ext]
	if l == nil {
		l = &line{
			ext:    ext,
			entity: "sip:" + ext + "@" + p.cfg.Domain,
			wake:   make(chan struct{}, 1),
		}
		p.lines[ext] = l
		p.wg.Add(1)
		go p.run(l)
	}

	if seq > 0 {
		switch {
		case seq < l.seq:
			return nil, fmt.Errorf("sip publish %s seq %d (have %d): %w", ext, seq, l.seq, pbx.ErrStale)
		case seq == l.seq && (s != l.want || reason != l.reason):
			return nil, fmt.Errorf("sip publish %s seq %d changed its state: %w", ext, seq, pbx.ErrStale)
		}
		l.seq = seq
	}
	return p.enqueueLocked(l, s, reason), nil
}

// enqueueLocked puts a state in the line's slot and wakes its worker.
// Callers hold p.mu.
func (p *Publisher) enqueueLocked(l *line, s presence.LineState, reason string) chan error {
	l.want, l.reason = s, reason
	l.gen++
	ch := make(chan error, 1)
	l.waiters = append(l.waiters, waiter{gen: l.gen, ch: ch})
	select {
	case l.wake <- struct{}{}:
	default: // already woken; the worker reads the newest slot
	}
	return ch
}

func wait(ctx context.Context, ch chan error) error {
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("sip publish: %w", ctx.Err())
	}
}

// run is an extension's worker: it sends the newest state in the slot,
// one PUBLISH at a time, and refreshes the publications before they
// expire. It returns when the Publisher is closed.
func (p *Publisher) run(l *line) {
	defer p.wg.Done()

	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if next := l.nextDeadline(); !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			fire = timer.C
		}
		select {
		case <-p.ctx.Done():
		case <-l.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if p.ctx.Err() != nil {
			return
		}

		p.mu.Lock()
		want, reason, gen := l.want, l.reason, l.gen
		pending := l.doneGen < gen
		p.mu.Unlock()

		now := time.Now()
		if pending || (l.failed && !now.Before(l.retryAt)) {
			err := p.apply(l, want, reason)
			p.finish(l, gen, want, reason, err)
			if err != nil {
				l.fail(now)
				p.log.Warn("sip publish failed", zap.String("extension", l.ext),
					zap.Duration("retry_in", l.backoff), zap.Error(err))
			} else {
				l.failed, l.backoff = false, 0
			}
			continue // a newer state may have arrived meanwhile
		}

		for _, pub := range l.pubs {
			if pub.etag == "" || now.Before(pub.refreshAt) {
				continue
			}
			if err := p.refresh(l, pub); err != nil {
				l.fail(now)
				pub.refreshAt = l.retryAt
				p.log.Warn("sip refresh failed", zap.String("extension", l.ext),
					zap.String("event", pub.event), zap.Duration("retry_in", l.backoff),
					zap.Error(err))
			}
		}
	}
}

// nextDeadline is when the worker must wake up without being asked: the
// next retry after a failure or the earliest refresh.
func (l *line) nextDeadline() time.Time {
	var next time.Time
	if l.failed {
		next = l.retryAt
	}
	for _, pub := range l.pubs {
		if pub.etag != "" && (next.IsZero() || pub.refreshAt.Before(next)) {
			next = pub.refreshAt
		}
	}
	return next
}

// fail schedules a retry with a backoff that doubles from 1 s to 1 min.
func (l *line) fail(now time.Time) {
	l.failed = true
	switch {
	case l.backoff == 0:
		l.backoff = time.Second
	case l.backoff < time.Minute:
		l.backoff = min(2*l.backoff, time.Minute)
	}
	l.retryAt = now.Add(l.backoff)
}

// finish records the outcome of gen and answers every Publish waiting for
// gen or an older request.
func (p *Publisher) finish(l *line, gen uint64, s presence.LineState, reason string,
	err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen > l.doneGen {
		l.doneGen = gen
	}
	if err == nil {
		l.accepted, l.acceptedReason = s, reason
	}
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if w.gen <= gen {
			w.ch <- err
			continue
		}
		kept = append(kept, w)
	}
	l.waiters = kept
}

// events lists the event packages this publisher publishes.
func (p *Publisher) events() []string {
	if p.cfg.PublishPresence {
		return []string{eventDialog, eventPresence}
	}
	return []string{eventDialog}
}

// publicationFor returns the line's publication for event, creating it.
func (l *line) publicationFor(event string) *publication {
	for _, pub := range l.pubs {
		if pub.event == event {
			return pub
		}
	}
	pub := &publication{event: event}
	l.pubs = append(l.pubs, pub)
	return pub
}

// apply makes the server hold state s for every event package, sending a
// PUBLISH only where the server holds something else (or nothing).
//
// A line that goes busy after a terminated dialog starts a new dialog in a
// fresh publication and then removes the old one: Kamailio (5.6, found by
// experiment) answers 200 to a change of a publication whose dialog is
// terminated but keeps the old body, so modifying it would leave the lamp
// dark. A new dialog per busy period is what RFC 4235 describes anyway.
func (p *Publisher) apply(l *line, s presence.LineState, reason string) error {
	for _, event := range p.events() {
		pub := l.publicationFor(event)
		key := stateKey(event, s, reason)
		if pub.etag != "" && pub.key == key {
			continue
		}

		var ended string // ETag of a terminated dialog to remove afterwards
		if event == eventDialog && key == dialogConfirmed {
			if pub.etag != "" && pub.key == dialogTerminated {
				ended, pub.etag = pub.etag, ""
			}
			if pub.etag == "" {
				l.dialogPeriod++
			}
		}
		if err := p.publishBody(l, pub, s, reason); err != nil {
			return err
		}
		if ended != "" {
			p.remove(l, event, ended)
		}
	}
	return nil
}

// remove ends the publication etag (Expires: 0). It is best effort: a
// publication it fails to remove expires on its own, and holds a
// terminated dialog that lights no lamp.
func (p *Publisher) remove(l *line, event, etag string) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.timeout())
	defer cancel()
	res, err := p.transact(ctx, l, p.newRequest(l, event, etag, 0, nil, ""))
	switch {
	case err != nil:
		p.log.Info("removing an ended publication failed", zap.String("extension", l.ext),
			zap.Error(err))
	case !res.IsSuccess() && res.StatusCode != 412:
		p.log.Info("removing an ended publication refused", zap.String("extension", l.ext),
			zap.Int("status", res.StatusCode))
	}
}

// stateKey is what decides the body of event for a state: two states with
// the same key need no new PUBLISH.
func stateKey(event string, s presence.LineState, reason string) string {
	if event == eventDialog {
		return dialogState(s)
	}
	act := activity(s, reason)
	return act + "|" + note(s, act)
}

// publishBody sends the state's body for pub: a modification when the
// server holds an ETag for it, else a fresh publication. A 412 to the
// modification (the server forgot the ETag) leads to one fresh PUBLISH.
func (p *Publisher) publishBody(l *line, pub *publication, s presence.LineState,
	reason string) error {
	res, err := p.send(l, pub.event, pub.etag, s, reason, true)
	if err != nil {
		return err
	}
	if res.StatusCode == 412 && pub.etag != "" {
		p.log.Info("presence server forgot the publication; publishing afresh",
			zap.String("extension", l.ext), zap.String("event", pub.event))
		pub.etag = ""
		if res, err = p.send(l, pub.event, "", s, reason, true); err != nil {
			return err
		}
	}
	if err := p.accept(l, pub, res); err != nil {
		return err
	}
	pub.key = stateKey(pub.event, s, reason)
	return nil
}

// refresh extends pub's lifetime with SIP-If-Match and no body. A 412
// (the server forgot the ETag, for example after a restart with an empty
// database) leads to one fresh PUBLISH carrying the state the server last
// accepted, which is the current one: refreshes run only when no change is
// waiting.
func (p *Publisher) refresh(l *line, pub *publication) error {
	res, err := p.send(l, pub.event, pub.etag, "", "", false)
	if err != nil {
		return err
	}
	if res.StatusCode == 412 {
		p.log.Info("presence server forgot the publication at refresh; publishing afresh",
			zap.String("extension", l.ext), zap.String("event", pub.event))
		pub.etag = ""
		p.mu.Lock()
		s, reason := l.accepted, l.acceptedReason
		p.mu.Unlock()
		if !s.Valid() {
			s = presence.Available
		}
		if res, err = p.send(l, pub.event, "", s, reason, true); err != nil {
			return err
		}
		if err := p.accept(l, pub, res); err != nil {
			return err
		}
		pub.key = stateKey(pub.event, s, reason)
		return nil
	}
	return p.accept(l, pub, res)
}

// accept stores the ETag and refresh time of a 2xx, or turns another
// answer into a StatusError and drops the ETag, so that the next attempt
// is a fresh publication.
func (p *Publisher) accept(l *line, pub *publication, res *gosip.Response) error {
	defer p.noteETag(l, pub)
	if !res.IsSuccess() {
		pub.etag = ""
		return &StatusError{Event: pub.event, Code: res.StatusCode, Reason: res.Reason}
	}

	granted := p.cfg.expires()
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 {
			granted = time.Duration(n) * time.Second
		}
	}

	pub.etag = ""
	if h := res.GetHeader("SIP-ETag"); h != nil {
		pub.etag = h.Value()
	}
	if pub.etag == "" {
		// RFC 3903 requires the ETag; without it the next change is a fresh
		// PUBLISH and no refresh is possible.
		p.log.Warn("presence server sent no SIP-ETag", zap.String("event", pub.event))
		return nil
	}
	pub.refreshAt = time.Now().Add(granted - refreshMargin(granted))
	return nil
}

// noteETag records the ETag the worker holds where the tests can read it.
func (p *Publisher) noteETag(l *line, pub *publication) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.etags == nil {
		l.etags = make(map[string]string)
	}
	l.etags[pub.event] = pub.etag
}

// refreshMargin is how long before the end of its lifetime a publication
// is refreshed: a quarter of the lifetime, at most 90 s, which leaves room
// for the 32 s a lost UDP transaction takes to time out.
func refreshMargin(granted time.Duration) time.Duration {
	return min(granted/4, 90*time.Second)
}

// send performs one PUBLISH transaction for event and returns its final
// answer, after answering a digest challenge and a 423 once each. With
// withBody it carries the body of state s; etag, when set, goes into
// SIP-If-Match.
func (p *Publisher) send(l *line, event, etag string, s presence.LineState, reason string,
	withBody bool) (*gosip.Response, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.timeout())
	defer cancel()

	expires := int(p.cfg.expires() / time.Second)
	var body []byte
	var contentType string
	if withBody {
		if event == eventDialog {
			l.dialogVersion++
			body = dialogInfoBody(l.entity, l.dialogVersion, dialogID(l.dialogPeriod), s)
			contentType = contentTypeDialogInfo
		} else {
			body = pidfBody(l.entity, s, reason)
			contentType = contentTypePIDF
		}
	}

	res, err := p.transact(ctx, l, p.newRequest(l, event, etag, expires, body, contentType))
	if err != nil {
		return nil, err
	}
	if res.StatusCode == gosip.StatusIntervalToBrief {
		// The server wants a longer lifetime: ask for its Min-Expires once.
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, err := strconv.Atoi(h.Value()); err == nil && n > expires {
				req := p.newRequest(l, event, etag, n, body, contentType)
				if res, err = p.transact(ctx, l, req); err != nil {
					return nil, err
				}
			}
		}
	}
	return res, nil
}

// transact sends req and answers a 401 or 407 with digest credentials.
func (p *Publisher) transact(ctx context.Context, l *line, req *gosip.Request) (
	*gosip.Response, error) {
	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	for {
		m := l.maxInFlight.Load()
		if n <= m || l.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	l.sent.Add(1)

	res, err := p.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sip PUBLISH %s to %s: %w", l.entity, p.cfg.Server, err)
	}
	if res.StatusCode != gosip.StatusUnauthorized &&
		res.StatusCode != gosip.StatusProxyAuthRequired {
		return res, nil
	}
	if p.cfg.Username == "" {
		return res, nil // a StatusError tells the operator to configure credentials
	}

	res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{
		Username: p.cfg.Username,
		Password: p.cfg.Password,
	})
	if err != nil {
		return nil, fmt.Errorf("sip PUBLISH %s with digest credentials: %w", l.entity, err)
	}
	return res, nil
}

// newRequest builds a PUBLISH for the line's presentity: Request-URI, To
// and From are sip:<ext>@<domain>, sent to the configured server.
func (p *Publisher) newRequest(l *line, event, etag string, expires int, body []byte,
	contentType string) *gosip.Request {
	uri := gosip.Uri{Scheme: "sip", User: l.ext, Host: p.cfg.Domain}
	req := gosip.NewRequest(gosip.PUBLISH, uri)
	req.SetTransport(p.transport)
	req.SetDestination(p.cfg.Server)

	from := &gosip.FromHeader{Address: uri, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: uri})
	req.AppendHeader(gosip.NewHeader("Event", event))
	exp := gosip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	req.AppendHeader(gosip.NewHeader("User-Agent", "OneSync"))
	if etag != "" {
		req.AppendHeader(gosip.NewHeader("SIP-If-Match", etag))
	}
	if body != nil {
		req.AppendHeader(gosip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
	return req
}
