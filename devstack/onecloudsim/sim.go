// Package onecloudsim is an in-process OneCloud PBX for `onesync dev` and
// the tests. It serves the REST contract of docs/onecloud-rest.md exactly
// (bearer key, request signatures, idempotency keys, sequence numbers,
// paging, JSON errors) and a busy-lamp panel that updates live. It keeps
// everything in memory and must only ever listen on a loopback address:
// the panel has no login.
package onecloudsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// Options configures a simulator.
type Options struct {
	// APIKey is the bearer key every API request must carry.
	APIKey string
	// SigningSecret is the shared secret of the request signatures.
	SigningSecret string
	// Logger receives requests it refused and pushes it applied; nil means
	// no logging.
	Logger *zap.Logger
	// RetryAfterSeconds is what an injected 429 advertises in Retry-After;
	// 0 means 1 and a negative value leaves the header out.
	RetryAfterSeconds int
	// MaxSkew is how far a request's timestamp may be from the clock;
	// zero means 5 minutes.
	MaxSkew time.Duration
	// Now is the simulator's clock; nil means time.Now.
	Now func() time.Time
}

// Receipt is one line-state request the simulator received, for tests and
// for the benchmark's propagation delay.
type Receipt struct {
	Org            string
	Extension      string
	State          presence.LineState
	Seq            int64
	IdempotencyKey string
	ObservedAt     time.Time
	ReceivedAt     time.Time
	Outcome        string // OutcomeApplied, OutcomeReplayed or OutcomeStale
}

// Outcomes of a line-state request in a Receipt.
const (
	OutcomeApplied  = "applied"
	OutcomeReplayed = "replayed"
	OutcomeStale    = "stale"
)

// maxReceipts bounds the receipt log; beyond it the oldest half is dropped.
const maxReceipts = 1 << 20

// maxIdempotencyKeys bounds the remembered idempotency keys per
// simulator; beyond it the oldest are forgotten.
const maxIdempotencyKeys = 1 << 18

// Sim is a OneCloud simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts Options
	log  *zap.Logger
	now  func() time.Time

	mu       sync.Mutex
	orgs     map[string]*org
	idem     map[string]idemEntry
	idemFIFO []string
	received []Receipt
	inject   []int // statuses to answer with, one per coming API request
	subs     map[string]map[chan event]struct{}

	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	closeMu sync.Once
	handler http.Handler
}

type org struct {
	id, name string
	exts     map[string]*extension
	order    []string // extension numbers, sorted
}

type extension struct {
	pbx.Extension
	state      presence.LineState
	seq        int64
	receivedAt time.Time // last applied update
	changedAt  time.Time // last time the state differed from the one before
	pushes     int
	replays    int
	stale      int
}

type idemEntry struct {
	fingerprint string
	status      int
	body        []byte
}

// New returns a simulator with no organisations. Call Start to listen, or
// mount Handler yourself.
func New(o Options) *Sim {
	s := &Sim{
		opts: o,
		log:  o.Logger,
		now:  o.Now,
		orgs: map[string]*org{},
		idem: map[string]idemEntry{},
		subs: map[string]map[chan event]struct{}{},
		done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.With(zap.String("component", "onecloudsim"))
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.MaxSkew <= 0 {
		s.opts.MaxSkew = 5 * time.Minute
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/orgs/{org}/extensions", s.authed(s.listExtensions))
	mux.HandleFunc("GET /api/v1/orgs/{org}/extensions/{ext}/line-state", s.authed(s.getLineState))
	mux.HandleFunc("PUT /api/v1/orgs/{org}/extensions/{ext}/line-state", s.authed(s.putLineState))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	mux.HandleFunc("GET /panel", s.panelIndex)
	mux.HandleFunc("GET /panel/{org}", s.panelPage)
	mux.HandleFunc("GET /panel/{org}/events", s.panelEvents)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/panel", http.StatusFound)
	})
	s.handler = mux
	return s
}

// Handler serves the REST contract under /api/v1 and the panel under /panel.
func (s *Sim) Handler() http.Handler { return s.handler }

// Start listens on addr, which must be a loopback address such as
// 127.0.0.1:8082 ("" or a port of 0 picks a free port), and serves in the
// background until Close.
func (s *Sim) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("onecloudsim: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("onecloudsim: listen address %q is not loopback; the simulator "+
			"has no login and must stay on this machine", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("onecloudsim: listen on %s: %w", addr, err)
	}

	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("onecloudsim: already started")
	}
	s.srv, s.ln = srv, ln
	s.mu.Unlock()

	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("simulator stopped serving", zap.Error(err))
		}
	}()
	s.log.Info("OneCloud simulator listening", zap.String("url", s.URL()))
	return nil
}

// URL is the simulator's base URL once started, such as
// http://127.0.0.1:8082; empty before Start.
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close ends the panel streams and stops the server started by Start.
func (s *Sim) Close() error {
	s.closeMu.Do(func() { close(s.done) })
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	// A graceful shutdown would wait up to 5 s for a connection that a
	// client opened but sent nothing on yet; a simulator has nothing to
	// drain, so every connection is closed at once.
	if err := srv.Close(); err != nil {
		return fmt.Errorf("onecloudsim: close: %w", err)
	}
	return nil
}

// AddOrg creates an organisation, or renames it if it exists.
func (s *Sim) AddOrg(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orgs[id]; ok {
		o.name = name
		return
	}
	s.orgs[id] = &org{id: id, name: name, exts: map[string]*extension{}}
}

// SetExtensions replaces an organisation's extensions. Extensions that stay
// keep their line state, sequence number and counters.
func (s *Sim) SetExtensions(orgID string, exts []pbx.Extension) error {
	seen := map[string]bool{}
	for i, e := range exts {
		if strings.TrimSpace(e.Number) == "" {
			return fmt.Errorf("onecloudsim: extension %d has no number", i)
		}
		if seen[e.Number] {
			return fmt.Errorf("onecloudsim: extension %s listed twice", e.Number)
		}
		seen[e.Number] = true
	}

	s.mu.Lock()
	o, ok := s.orgs[orgID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("onecloudsim: organisation %q does not exist", orgID)
	}
	next := make(map[string]*extension, len(exts))
	for _, e := range exts {
		x := o.exts[e.Number]
		if x == nil {
			x = &extension{}
		}
		x.Extension = e
		next[e.Number] = x
	}
	o.exts = next
	o.reorder()
	s.mu.Unlock()

	s.broadcast(orgID, event{Name: "extensions"})
	return nil
}

// RemoveExtension deletes one extension, so that updates to it answer 404.
// It reports whether the extension existed.
func (s *Sim) RemoveExtension(orgID, number string) bool {
	s.mu.Lock()
	o, ok := s.orgs[orgID]
	if !ok || o.exts[number] == nil {
		s.mu.Unlock()
		return false
	}
	delete(o.exts, number)
	o.reorder()
	s.mu.Unlock()

	s.broadcast(orgID, event{Name: "extensions"})
	return true
}

// LineState returns an extension's line state and when the simulator
// received the update that set it; an empty state and a zero time when no
// update was applied yet or the extension does not exist.
func (s *Sim) LineState(orgID, number string) (presence.LineState, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.ext(orgID, number)
	if x == nil {
		return "", time.Time{}
	}
	return x.state, x.receivedAt
}

// Pushes counts the updates applied to an extension (replays and stale
// updates excluded).
func (s *Sim) Pushes(orgID, number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.ext(orgID, number); x != nil {
		return x.pushes
	}
	return 0
}

// Replays counts the requests to an extension that repeated an idempotency
// key and were answered from memory instead of being applied again.
func (s *Sim) Replays(orgID, number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.ext(orgID, number); x != nil {
		return x.replays
	}
	return 0
}

// StaleRejections counts the updates to an extension refused because their
// sequence number was not newer than the applied one.
func (s *Sim) StaleRejections(orgID, number string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.ext(orgID, number); x != nil {
		return x.stale
	}
	return 0
}

// Received returns a copy of the line-state requests received so far, in
// order, with their receive times. The log keeps the newest 1,048,576.
func (s *Sim) Received() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Receipt(nil), s.received...)
}

// InjectError makes the next n authenticated API requests answer status
// with a JSON error body (and Retry-After for 429), before any other work.
func (s *Sim) InjectError(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.inject = append(s.inject, status)
	}
}

// Restore sets an extension's line state and sequence number as a real
// PBX would still hold them after OneSync restarted. The simulator keeps
// its state in memory only; `onesync dev` restores what the store recorded
// as pushed, so that the panel and the portal agree after a restart. It
// counts as no push and sends no event.
func (s *Sim) Restore(orgID, number string, state presence.LineState, seq int64,
	changedAt time.Time) error {
	if !state.Valid() {
		return fmt.Errorf("onecloudsim: line state %q is not one of the five", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.ext(orgID, number)
	if x == nil {
		return fmt.Errorf("onecloudsim: no extension %s in organisation %s", number, orgID)
	}
	x.state, x.seq, x.receivedAt, x.changedAt = state, seq, changedAt, changedAt
	return nil
}

func (s *Sim) ext(orgID, number string) *extension {
	o := s.orgs[orgID]
	if o == nil {
		return nil
	}
	return o.exts[number]
}

func (o *org) reorder() {
	o.order = o.order[:0]
	for n := range o.exts {
		o.order = append(o.order, n)
	}
	sort.Slice(o.order, func(i, j int) bool {
		a, b := o.order[i], o.order[j]
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return a < b
	})
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// authed checks the bearer key, the timestamp and the signature of the
// exact body, then hands the request and its body to next.
func (s *Sim) authed(next func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, pbx.CodeInvalidRequest,
				"body too large or unreadable")
			return
		}
		if code, msg := s.verify(r, body); code != "" {
			s.log.Warn("refused an unauthenticated request", zap.String("path", r.URL.Path),
				zap.String("reason", msg))
			w.Header().Set("WWW-Authenticate", `Bearer realm="onecloud"`)
			writeError(w, http.StatusUnauthorized, code, msg)
			return
		}

		s.mu.Lock()
		status := 0
		if len(s.inject) > 0 {
			status, s.inject = s.inject[0], s.inject[1:]
		}
		s.mu.Unlock()
		if status != 0 {
			s.writeInjected(w, status)
			return
		}
		next(w, r, body)
	}
}

// verify returns an error code and message when the request's
// credentials are wrong, or two empty strings when they are right.
func (s *Sim) verify(r *http.Request, body []byte) (string, string) {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || key == "" {
		return pbx.CodeUnauthorized, "missing bearer key"
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.APIKey)) != 1 {
		return pbx.CodeUnauthorized, "unknown API key"
	}

	ts := r.Header.Get(pbx.HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "invalid_signature", "missing or unreadable " + pbx.HeaderTimestamp
	}
	skew := s.now().Sub(time.Unix(sec, 0))
	if skew < -s.opts.MaxSkew || skew > s.opts.MaxSkew {
		return "invalid_signature", "timestamp outside the allowed window"
	}

	got, ok := strings.CutPrefix(r.Header.Get(pbx.HeaderSignature), "v1=")
	sig, err := hex.DecodeString(got)
	if !ok || err != nil {
		return "invalid_signature", "missing or unreadable " + pbx.HeaderSignature
	}
	// Computed here on its own, not with pbx.Sign, so the tests check the
	// connector against the written contract rather than against itself.
	mac := hmac.New(sha256.New, []byte(s.opts.SigningSecret))
	fmt.Fprintf(mac, "%s\n%s\n%s\n", ts, r.Method, r.RequestURI)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "invalid_signature", "signature does not match the request"
	}
	return "", ""
}

func (s *Sim) writeInjected(w http.ResponseWriter, status int) {
	code := pbx.CodeInternal
	switch {
	case status == http.StatusTooManyRequests:
		code = pbx.CodeRateLimited
		secs := s.opts.RetryAfterSeconds
		if secs == 0 {
			secs = 1
		}
		if secs > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
	case status == http.StatusServiceUnavailable:
		code = pbx.CodeServiceUnavailable
	case status == http.StatusNotFound:
		code = pbx.CodeExtensionNotFound
	case status == http.StatusUnauthorized:
		code = pbx.CodeUnauthorized
	case status == http.StatusForbidden:
		code = pbx.CodeForbidden
	case status < 500:
		code = pbx.CodeInvalidRequest
	}
	writeError(w, status, code, "injected by the simulator")
}

// page is the body of the extensions listing.
type page struct {
	Extensions    []pbx.Extension `json:"extensions"`
	NextPageToken string          `json:"nextPageToken,omitempty"`
}

func (s *Sim) listExtensions(w http.ResponseWriter, r *http.Request, _ []byte) {
	size := 100
	if v := r.URL.Query().Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest,
				"pageSize must be a whole number from 1 to 500")
			return
		}
		size = n
	}
	offset := 0
	if tok := r.URL.Query().Get("pageToken"); tok != "" {
		n, err := decodeToken(tok)
		if err != nil {
			writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest, "pageToken is not valid")
			return
		}
		offset = n
	}

	s.mu.Lock()
	o := s.orgs[r.PathValue("org")]
	if o == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, pbx.CodeOrgNotFound, "no such organisation")
		return
	}
	out := page{Extensions: []pbx.Extension{}}
	end := min(offset+size, len(o.order))
	for _, n := range o.order[min(offset, end):end] {
		out.Extensions = append(out.Extensions, o.exts[n].Extension)
	}
	if end < len(o.order) {
		out.NextPageToken = encodeToken(end)
	}
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, out)
}

// lineStateView is the body of a line-state answer.
type lineStateView struct {
	Extension  string             `json:"extension"`
	State      presence.LineState `json:"state,omitempty"`
	Seq        int64              `json:"seq"`
	ReceivedAt *time.Time         `json:"receivedAt,omitempty"`
}

func (s *Sim) getLineState(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	o := s.orgs[r.PathValue("org")]
	var x *extension
	if o != nil {
		x = o.exts[r.PathValue("ext")]
	}
	var v lineStateView
	if x != nil {
		v = view(x)
	}
	s.mu.Unlock()

	switch {
	case o == nil:
		writeError(w, http.StatusNotFound, pbx.CodeOrgNotFound, "no such organisation")
	case x == nil:
		writeError(w, http.StatusNotFound, pbx.CodeExtensionNotFound, "no such extension")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func view(x *extension) lineStateView {
	v := lineStateView{Extension: x.Number, State: x.state, Seq: x.seq}
	if !x.receivedAt.IsZero() {
		t := x.receivedAt.UTC()
		v.ReceivedAt = &t
	}
	return v
}

// putBody is the body of a line-state update.
type putBody struct {
	State      presence.LineState `json:"state"`
	Reason     string             `json:"reason"`
	Seq        *int64             `json:"seq"`
	ObservedAt time.Time          `json:"observedAt"`
}

func (s *Sim) putLineState(w http.ResponseWriter, r *http.Request, body []byte) {
	orgID, number := r.PathValue("org"), r.PathValue("ext")
	key := r.Header.Get(pbx.HeaderIdempotencyKey)
	if key == "" || len(key) > 255 {
		writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest,
			pbx.HeaderIdempotencyKey+" header is required (1 to 255 characters)")
		return
	}
	var in putBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest, "body is not valid: "+err.Error())
		return
	}
	switch {
	case !in.State.Valid():
		writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest,
			fmt.Sprintf("state %q is not one of busy, dnd, away, available, offline", in.State))
		return
	case in.Seq == nil || *in.Seq <= 0:
		writeError(w, http.StatusBadRequest, pbx.CodeInvalidRequest, "seq must be a positive integer")
		return
	}

	sum := sha256.Sum256(body)
	fingerprint := r.Method + " " + r.URL.Path + " " + hex.EncodeToString(sum[:])
	idemID := orgID + "\x00" + key
	now := s.now()

	s.mu.Lock()
	o := s.orgs[orgID]
	if o == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, pbx.CodeOrgNotFound, "no such organisation")
		return
	}
	x := o.exts[number]
	if x == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, pbx.CodeExtensionNotFound, "no such extension")
		return
	}
	receipt := Receipt{Org: orgID, Extension: number, State: in.State, Seq: *in.Seq,
		IdempotencyKey: key, ObservedAt: in.ObservedAt, ReceivedAt: now}

	if prev, ok := s.idem[idemID]; ok {
		if prev.fingerprint != fingerprint {
			s.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, pbx.CodeIdempotencyReused,
				"this Idempotency-Key was used for a different request")
			return
		}
		x.replays++
		receipt.Outcome = OutcomeReplayed
		s.record(receipt)
		s.mu.Unlock()
		w.Header().Set(pbx.HeaderReplayed, "true")
		writeRaw(w, prev.status, prev.body)
		return
	}

	if *in.Seq <= x.seq {
		x.stale++
		receipt.Outcome = OutcomeStale
		s.record(receipt)
		resp := mustJSON(map[string]any{"error": map[string]any{
			"code":       pbx.CodeStaleSequence,
			"message":    fmt.Sprintf("seq %d is not newer than the applied %d", *in.Seq, x.seq),
			"currentSeq": x.seq,
		}})
		s.remember(idemID, idemEntry{fingerprint, http.StatusConflict, resp})
		s.mu.Unlock()
		writeRaw(w, http.StatusConflict, resp)
		return
	}

	changed := x.state != in.State
	x.state, x.seq, x.receivedAt = in.State, *in.Seq, now
	if changed {
		x.changedAt = now
	}
	x.pushes++
	receipt.Outcome = OutcomeApplied
	s.record(receipt)
	resp := mustJSON(view(x))
	s.remember(idemID, idemEntry{fingerprint, http.StatusOK, resp})
	ev := lampEvent(x)
	s.mu.Unlock()

	s.log.Debug("line state applied", zap.String("org", orgID), zap.String("extension", number),
		zap.String("state", string(in.State)), zap.Int64("seq", *in.Seq))
	s.broadcast(orgID, ev)
	writeRaw(w, http.StatusOK, resp)
}

// record appends to the receipt log; s.mu must be held.
func (s *Sim) record(r Receipt) {
	if len(s.received) >= maxReceipts {
		s.received = append(s.received[:0], s.received[maxReceipts/2:]...)
	}
	s.received = append(s.received, r)
}

// remember stores an answer under its idempotency key; s.mu must be held.
func (s *Sim) remember(id string, e idemEntry) {
	if len(s.idemFIFO) >= maxIdempotencyKeys {
		drop := s.idemFIFO[:maxIdempotencyKeys/2]
		for _, k := range drop {
			delete(s.idem, k)
		}
		s.idemFIFO = append(s.idemFIFO[:0], s.idemFIFO[maxIdempotencyKeys/2:]...)
	}
	s.idem[id] = e
	s.idemFIFO = append(s.idemFIFO, id)
}

func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

func decodeToken(tok string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, fmt.Errorf("decode page token: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
	if err != nil || n < 0 || !strings.HasPrefix(string(raw), "o:") {
		return 0, errors.New("page token is not an offset")
	}
	return n, nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeRaw(w, status, mustJSON(v))
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Only the simulator's own plain types are marshalled here.
		panic(fmt.Sprintf("onecloudsim: marshal answer: %v", err))
	}
	return append(data, '\n')
}
