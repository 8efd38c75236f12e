package pbx

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/setera/onesync/presence"
)

// Header names of the OneCloud REST contract (docs/onecloud-rest.md).
const (
	HeaderTimestamp      = "X-OneCloud-Timestamp"
	HeaderSignature      = "X-OneCloud-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// Error codes the OneCloud REST contract puts in an error body.
const (
	CodeInvalidRequest     = "invalid_request"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeOrgNotFound        = "org_not_found"
	CodeExtensionNotFound  = "extension_not_found"
	CodeStaleSequence      = "stale_sequence"
	CodeIdempotencyReused  = "idempotency_key_reused"
	CodeRateLimited        = "rate_limited"
	CodeInternal           = "internal"
	CodeServiceUnavailable = "unavailable"
)

// ErrUnauthorized means OneCloud refused the API key or the signature
// (HTTP 401 or 403). Retrying cannot help; an operator must fix the
// credentials.
var ErrUnauthorized = errors.New("pbx: OneCloud refused the API key or signature")

// ErrOrgNotFound means OneCloud does not know the organisation.
var ErrOrgNotFound = errors.New("pbx: organisation not found")

// ErrBadAnswer means OneCloud's answer did not follow the contract.
var ErrBadAnswer = errors.New("pbx: OneCloud's answer does not follow the contract")

// RESTConfig configures the REST connector. APIKey and SigningSecret are
// secrets: String and MarshalLogObject leave them out.
type RESTConfig struct {
	// BaseURL is OneCloud's API root, such as https://api.onecloud.example.
	// http is accepted for a loopback host only (the simulator).
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>".
	APIKey string
	// SigningSecret is the shared HMAC-SHA256 key that signs every request.
	SigningSecret string
	// HTTPClient sends the requests; nil means a client with a 15 s timeout.
	HTTPClient *http.Client
	// MaxRetries bounds the retries after the first attempt; 0 means 4 and
	// a negative value means no retry.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries; zero means 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives retries and failures; nil means no logging.
	Logger *zap.Logger
	// ObservePush, when set, is called once per Publish with how it went,
	// for example to feed a Prometheus histogram.
	ObservePush func(PushObservation)
	// Now gives the signing time; nil means time.Now.
	Now func() time.Time
}

// PushObservation describes one Publish call for metrics.
type PushObservation struct {
	Org       string
	Extension string
	State     presence.LineState
	Duration  time.Duration // from the first attempt to the final answer
	Attempts  int
	Outcome   string // one of the PushOutcome constants
}

// Outcomes a PushObservation reports; they suit a metric label.
const (
	PushApplied  = "applied"
	PushReplayed = "replayed"
	PushStale    = "stale"
	PushNotFound = "not_found"
	PushRefused  = "refused"
	PushFailed   = "failed"
)

// String describes the configuration without its secrets.
func (c RESTConfig) String() string {
	return fmt.Sprintf("RESTConfig{BaseURL: %q, APIKey: %s, SigningSecret: %s, MaxRetries: %d}",
		c.BaseURL, redacted(c.APIKey), redacted(c.SigningSecret), c.MaxRetries)
}

// MarshalLogObject logs the configuration without its secrets.
func (c RESTConfig) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("baseURL", c.BaseURL)
	enc.AddString("apiKey", redacted(c.APIKey))
	enc.AddString("signingSecret", redacted(c.SigningSecret))
	enc.AddInt("maxRetries", c.MaxRetries)
	return nil
}

func redacted(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// REST is the OneCloud REST connector. It is safe for concurrent use.
type REST struct {
	base       *url.URL
	key        string
	secret     []byte
	client     *http.Client
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
	log        *zap.Logger
	observe    func(PushObservation)
	now        func() time.Time
}

var _ Connector = (*REST)(nil)

// NewREST checks the configuration and returns a connector.
func NewREST(cfg RESTConfig) (*REST, error) {
	base, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil {
		return nil, fmt.Errorf("pbx rest config: base URL: %w", err)
	}
	if base.Host == "" || base.Opaque != "" {
		return nil, fmt.Errorf("pbx rest config: base URL %q has no host", cfg.BaseURL)
	}
	switch base.Scheme {
	case "https":
	case "http":
		if !isLoopback(base.Hostname()) {
			return nil, fmt.Errorf("pbx rest config: base URL %q: http is allowed for "+
				"loopback only, use https", cfg.BaseURL)
		}
	default:
		return nil, fmt.Errorf("pbx rest config: base URL %q: scheme must be https", cfg.BaseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("pbx rest config: base URL %q must not carry a query, "+
			"fragment or credentials", cfg.BaseURL)
	}
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""

	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("pbx rest config: API key is missing")
	}
	if strings.ContainsAny(cfg.APIKey, " \t\r\n") {
		return nil, errors.New("pbx rest config: API key contains white space")
	}
	if len(cfg.SigningSecret) < 16 {
		return nil, errors.New("pbx rest config: signing secret is missing or shorter " +
			"than 16 bytes")
	}

	r := &REST{
		base:       base,
		key:        cfg.APIKey,
		secret:     []byte(cfg.SigningSecret),
		client:     cfg.HTTPClient,
		maxRetries: cfg.MaxRetries,
		minBackoff: cfg.MinBackoff,
		maxBackoff: cfg.MaxBackoff,
		log:        cfg.Logger,
		observe:    cfg.ObservePush,
		now:        cfg.Now,
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: 15 * time.Second}
	}
	switch {
	case r.maxRetries == 0:
		r.maxRetries = 4
	case r.maxRetries < 0:
		r.maxRetries = 0
	}
	if r.minBackoff <= 0 {
		r.minBackoff = 200 * time.Millisecond
	}
	if r.maxBackoff <= 0 {
		r.maxBackoff = 10 * time.Second
	}
	if r.maxBackoff < r.minBackoff {
		return nil, errors.New("pbx rest config: MaxBackoff is shorter than MinBackoff")
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.log = r.log.With(zap.String("component", "pbx-rest"))
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// extensionPage is the body of GET .../extensions.
type extensionPage struct {
	Extensions    []Extension `json:"extensions"`
	NextPageToken string      `json:"nextPageToken"`
}

// lineStateBody is the body of PUT .../line-state.
type lineStateBody struct {
	State      presence.LineState `json:"state"`
	Reason     string             `json:"reason,omitempty"`
	Seq        int64              `json:"seq"`
	ObservedAt time.Time          `json:"observedAt"`
}

// lineStateAnswer is OneCloud's answer to PUT .../line-state.
type lineStateAnswer struct {
	Extension  string             `json:"extension"`
	State      presence.LineState `json:"state"`
	Seq        *int64             `json:"seq"`
	ReceivedAt time.Time          `json:"receivedAt"`
}

// errorBody is the error answer of every endpoint.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		CurrentSeq int64  `json:"currentSeq,omitempty"`
	} `json:"error"`
}

// pageSize is how many extensions the connector asks for per page.
const pageSize = 200

// maxPages bounds a listing so a PBX that keeps answering with a next page
// cannot loop the connector forever.
const maxPages = 10_000

// Extensions lists every extension of an organisation, following pages.
func (r *REST) Extensions(ctx context.Context, org string) ([]Extension, error) {
	if err := checkID("organisation", org); err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}

	var all []Extension
	seen := map[string]bool{}
	token := ""
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("list extensions of %s: more than %d pages: %w",
				org, maxPages, ErrBadAnswer)
		}
		q := url.Values{"pageSize": {strconv.Itoa(pageSize)}}
		if token != "" {
			q.Set("pageToken", token)
		}
		path := "/api/v1/orgs/" + url.PathEscape(org) + "/extensions?" + q.Encode()

		res, err := r.do(ctx, http.MethodGet, path, nil, "")
		if err != nil {
			return nil, fmt.Errorf("list extensions of %s: %w", org, err)
		}
		if res.status != http.StatusOK {
			return nil, fmt.Errorf("list extensions of %s: %w", org, r.statusError(res, false))
		}

		var p extensionPage
		if err := decodeStrict(res.body, &p); err != nil {
			return nil, fmt.Errorf("list extensions of %s: %w: %v", org, ErrBadAnswer, err)
		}
		if p.Extensions == nil {
			return nil, fmt.Errorf("list extensions of %s: %w: field extensions is missing",
				org, ErrBadAnswer)
		}
		for i, e := range p.Extensions {
			if strings.TrimSpace(e.Number) == "" {
				return nil, fmt.Errorf("list extensions of %s: %w: extension %d on page %d "+
					"has no number", org, ErrBadAnswer, i, page+1)
			}
			if seen[e.Number] {
				return nil, fmt.Errorf("list extensions of %s: %w: extension %s listed twice",
					org, ErrBadAnswer, e.Number)
			}
			seen[e.Number] = true
			all = append(all, e)
		}
		if p.NextPageToken == "" {
			return all, nil
		}
		if p.NextPageToken == token {
			return nil, fmt.Errorf("list extensions of %s: %w: page token repeats",
				org, ErrBadAnswer)
		}
		token = p.NextPageToken
	}
}

// Publish sets one extension's line state. A retry of the same update
// carries the same Idempotency-Key, so OneCloud applies it once. It returns
// ErrStale when OneCloud already holds a newer update, ErrExtensionNotFound
// when OneCloud does not know the extension, and ErrUnauthorized when it
// refuses the credentials.
func (r *REST) Publish(ctx context.Context, u Update) (err error) {
	start := time.Now()
	attempts := 0
	outcome := PushFailed
	defer func() {
		if r.observe != nil {
			r.observe(PushObservation{Org: u.Org, Extension: u.Extension, State: u.State,
				Duration: time.Since(start), Attempts: attempts, Outcome: outcome})
		}
	}()

	if err := checkUpdate(u); err != nil {
		return fmt.Errorf("publish line state: %w", err)
	}
	key := u.IdempotencyKey
	if key == "" {
		key = DeriveIdempotencyKey(u)
	}
	body, err := json.Marshal(lineStateBody{State: u.State, Reason: u.Reason, Seq: u.Seq,
		ObservedAt: u.ObservedAt.UTC()})
	if err != nil {
		return fmt.Errorf("publish line state: encode body: %w", err)
	}
	path := "/api/v1/orgs/" + url.PathEscape(u.Org) + "/extensions/" +
		url.PathEscape(u.Extension) + "/line-state"

	res, err := r.do(ctx, http.MethodPut, path, body, key)
	attempts = res.attempts
	if err != nil {
		return fmt.Errorf("publish %s/%s: %w", u.Org, u.Extension, err)
	}

	switch res.status {
	case http.StatusOK:
		var a lineStateAnswer
		if err := decodeStrict(res.body, &a); err != nil {
			return fmt.Errorf("publish %s/%s: %w: %v", u.Org, u.Extension, ErrBadAnswer, err)
		}
		if err := checkAnswer(a, u); err != nil {
			return fmt.Errorf("publish %s/%s: %w: %v", u.Org, u.Extension, ErrBadAnswer, err)
		}
		outcome = PushApplied
		if res.header.Get(HeaderReplayed) == "true" {
			outcome = PushReplayed
		}
		return nil
	case http.StatusConflict:
		e, _ := parseError(res.body)
		if e.Error.Code == CodeStaleSequence {
			outcome = PushStale
			return fmt.Errorf("publish %s/%s seq %d (PBX holds %d): %w",
				u.Org, u.Extension, u.Seq, e.Error.CurrentSeq, ErrStale)
		}
	}
	err = r.statusError(res, true)
	switch {
	case errors.Is(err, ErrExtensionNotFound):
		outcome = PushNotFound
	case errors.Is(err, ErrUnauthorized):
		outcome = PushRefused
	}
	return fmt.Errorf("publish %s/%s: %w", u.Org, u.Extension, err)
}

// DeriveIdempotencyKey makes the idempotency key Publish uses when an
// update carries none: the same change (organisation, extension, sequence
// number, state) always gives the same key.
func DeriveIdempotencyKey(u Update) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d\x00%s",
		u.Org, u.Extension, u.Seq, u.State)))
	return "onesync-" + hex.EncodeToString(sum[:16])
}

// Sign computes the X-OneCloud-Signature value of a request: HMAC-SHA256
// with the shared secret over the timestamp, the method, the request URI
// (path and query as sent) and the exact body, each on its own line.
func Sign(secret []byte, timestamp, method, requestURI string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp + "\n" + method + "\n" + requestURI + "\n"))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// response is one final answer from OneCloud.
type response struct {
	status   int
	header   http.Header
	body     []byte
	attempts int
}

// maxAnswer bounds how much of an answer the connector reads.
const maxAnswer = 4 << 20

// do sends one request, retrying on 429, 5xx and connection errors with
// exponential backoff and jitter, bounded by MaxRetries and ctx. Any other
// answer is returned to the caller.
func (r *REST) do(ctx context.Context, method, path string, body []byte,
	idemKey string) (response, error) {
	var last error
	for attempt := 0; ; attempt++ {
		res, err := r.once(ctx, method, path, body, idemKey)
		res.attempts = attempt + 1
		retryable := false
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return res, fmt.Errorf("%s %s: %w", method, stripQuery(path), ctx.Err())
			}
			if errors.Is(err, ErrBadAnswer) {
				return res, fmt.Errorf("%s %s: %w", method, stripQuery(path), err)
			}
			last, retryable = err, true
		case res.status == http.StatusTooManyRequests || res.status >= 500:
			last, retryable = r.statusError(res, false), true
			wait = retryAfter(res.header.Get("Retry-After"), r.now())
		default:
			return res, nil
		}

		if !retryable || attempt >= r.maxRetries {
			return res, fmt.Errorf("%s %s: giving up after %d attempts: %w",
				method, stripQuery(path), attempt+1, last)
		}
		if wait == 0 {
			wait = r.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return res, fmt.Errorf("%s %s: next retry in %s is past the deadline: %w",
				method, stripQuery(path), wait.Round(time.Millisecond), last)
		}
		r.log.Info("retrying OneCloud request",
			zap.String("method", method), zap.String("path", stripQuery(path)),
			zap.Int("attempt", attempt+1), zap.Int("status", res.status),
			zap.Duration("wait", wait), zap.Error(last))

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, fmt.Errorf("%s %s: %w (last error: %v)",
				method, stripQuery(path), ctx.Err(), last)
		case <-t.C:
		}
	}
}

// once sends a single signed request.
func (r *REST) once(ctx context.Context, method, path string, body []byte,
	idemKey string) (response, error) {
	target := r.base.String() + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return response{}, fmt.Errorf("build request: %w", err)
	}

	ts := strconv.FormatInt(r.now().Unix(), 10)
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(r.secret, ts, method, req.URL.RequestURI(), body))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "onesync-pbx-rest/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set(HeaderIdempotencyKey, idemKey)
	}

	res, err := r.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("send: %w", err)
	}
	defer res.Body.Close()

	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return response{}, fmt.Errorf("read answer: %w", err)
	}
	if len(data) > maxAnswer {
		return response{status: res.StatusCode}, fmt.Errorf("answer longer than %d bytes: %w",
			maxAnswer, ErrBadAnswer)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}, nil
}

// backoff is the wait before retry number attempt+1: doubling from
// MinBackoff up to MaxBackoff, of which a random half is kept, so that many
// workers retrying at once spread out.
func (r *REST) backoff(attempt int) time.Duration {
	d := r.minBackoff
	for i := 0; i < attempt && d < r.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter reads a Retry-After header (seconds or an HTTP date). It
// returns 0 when the header is absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// statusError turns a final non-success answer into an error that callers
// can test with errors.Is.
func (r *REST) statusError(res response, extension bool) error {
	e, ok := parseError(res.body)
	detail := fmt.Sprintf("HTTP %d", res.status)
	if ok {
		detail = fmt.Sprintf("HTTP %d %s: %s", res.status, e.Error.Code, e.Error.Message)
	}
	switch res.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w (%s); check the API key and signing secret", ErrUnauthorized, detail)
	case http.StatusNotFound:
		// Only a contract error body counts: a bare 404 is more likely a
		// wrong base URL, and must not mark every link broken.
		switch {
		case e.Error.Code == CodeOrgNotFound && extension:
			return &notFoundError{detail: detail, org: true}
		case e.Error.Code == CodeOrgNotFound:
			return fmt.Errorf("%w (%s)", ErrOrgNotFound, detail)
		case e.Error.Code == CodeExtensionNotFound:
			return &notFoundError{detail: detail}
		}
		return fmt.Errorf("%s without a contract error body; check the base URL: %w",
			detail, ErrBadAnswer)
	}
	if !ok && len(res.body) > 0 && res.status < 500 && res.status != http.StatusTooManyRequests {
		return fmt.Errorf("%s with a body that is not a contract error: %w", detail, ErrBadAnswer)
	}
	return errors.New(detail)
}

// notFoundError is a 404 to a line-state update: the extension's link is
// broken. When the whole organisation is missing it is also ErrOrgNotFound.
type notFoundError struct {
	detail string
	org    bool
}

func (e *notFoundError) Error() string {
	if e.org {
		return fmt.Sprintf("%v (%s)", ErrOrgNotFound, e.detail)
	}
	return fmt.Sprintf("%v (%s)", ErrExtensionNotFound, e.detail)
}

func (e *notFoundError) Is(target error) bool {
	return target == ErrExtensionNotFound || (e.org && target == ErrOrgNotFound)
}

func parseError(body []byte) (errorBody, bool) {
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		return errorBody{}, false
	}
	return e, true
}

// decodeStrict decodes one JSON value and refuses trailing data. Unknown
// fields are allowed so OneCloud can add fields without breaking OneSync.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func checkAnswer(a lineStateAnswer, u Update) error {
	switch {
	case a.Extension == "":
		return errors.New("field extension is missing")
	case a.Extension != u.Extension:
		return fmt.Errorf("answer is for extension %q, not %q", a.Extension, u.Extension)
	case a.State == "":
		return errors.New("field state is missing")
	case !a.State.Valid():
		return fmt.Errorf("state %q is not a line state", a.State)
	case a.Seq == nil:
		return errors.New("field seq is missing")
	case *a.Seq != u.Seq:
		return fmt.Errorf("answer has seq %d, the update %d", *a.Seq, u.Seq)
	case a.State != u.State:
		return fmt.Errorf("answer has state %s, the update %s", a.State, u.State)
	}
	return nil
}

func checkUpdate(u Update) error {
	if err := checkID("organisation", u.Org); err != nil {
		return err
	}
	if err := checkID("extension", u.Extension); err != nil {
		return err
	}
	if !u.State.Valid() {
		return fmt.Errorf("state %q is not a line state", u.State)
	}
	if u.Seq <= 0 {
		return fmt.Errorf("sequence number %d must be positive", u.Seq)
	}
	if len(u.IdempotencyKey) > 255 {
		return errors.New("idempotency key longer than 255 characters")
	}
	return nil
}

func checkID(what, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(v) > 128 {
		return fmt.Errorf("%s %.20q... is longer than 128 characters", what, v)
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s %q contains a control character", what, v)
		}
	}
	return nil
}

func stripQuery(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}
