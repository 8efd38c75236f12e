package pbx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

const (
	testKey    = "test-api-key-5b0e1c"
	testSecret = "test-signing-secret-9f3a27d1"
	org        = "acme"
)

// recorder keeps every PushObservation the connector reports.
type recorder struct {
	mu  sync.Mutex
	obs []pbx.PushObservation
}

func (r *recorder) observe(o pbx.PushObservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

func (r *recorder) last(t *testing.T) pbx.PushObservation {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.obs) == 0 {
		t.Fatal("no push observed")
	}
	return r.obs[len(r.obs)-1]
}

// startSim runs a simulator on a free loopback port with organisation
// "acme" and extensions 2001 to 2003.
func startSim(t *testing.T, o onecloudsim.Options) *onecloudsim.Sim {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey, o.SigningSecret = testKey, testSecret
	}
	sim := onecloudsim.New(o)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.AddOrg(org, "Acme")
	err := sim.SetExtensions(org, []pbx.Extension{
		{Number: "2001", Name: "Ada", Email: "ada@acme.example"},
		{Number: "2002", Name: "Bo", Phone: "+358401111111"},
		{Number: "2003", Name: "Cy"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

func newREST(t *testing.T, cfg pbx.RESTConfig) *pbx.REST {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.SigningSecret == "" {
		cfg.SigningSecret = testSecret
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 40*time.Millisecond
	}
	r, err := pbx.NewREST(cfg)
	if err != nil {
		t.Fatalf("NewREST: %v", err)
	}
	return r
}

func update(ext string, state presence.LineState, seq int64) pbx.Update {
	return pbx.Update{Org: org, Extension: ext, State: state, Seq: seq,
		Reason: "test", ObservedAt: time.Now(),
		IdempotencyKey: fmt.Sprintf("k-%s-%d", ext, seq)}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPublishSetsTheLineState(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), ObservePush: rec.observe})

	before := time.Now()
	if err := c.Publish(ctx(t), update("2001", presence.Busy, 1)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	state, at := sim.LineState(org, "2001")
	if state != presence.Busy {
		t.Fatalf("line state %q, want busy", state)
	}
	if at.Before(before.Add(-time.Second)) {
		t.Errorf("received at %v, before the push started at %v", at, before)
	}
	if n := sim.Pushes(org, "2001"); n != 1 {
		t.Errorf("pushes %d, want 1", n)
	}
	if o := rec.last(t); o.Outcome != pbx.PushApplied || o.Attempts != 1 {
		t.Errorf("observation %+v, want applied in 1 attempt", o)
	}

	// The next change wins; other extensions are untouched.
	if err := c.Publish(ctx(t), update("2001", presence.Available, 2)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if state, _ := sim.LineState(org, "2001"); state != presence.Available {
		t.Errorf("line state %q, want available", state)
	}
	if state, at := sim.LineState(org, "2002"); state != "" || !at.IsZero() {
		t.Errorf("2002 has state %q at %v, want none", state, at)
	}
}

func TestExtensionsFollowsPages(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	var exts []pbx.Extension
	for i := range 450 {
		exts = append(exts, pbx.Extension{Number: fmt.Sprint(3000 + i),
			Email: fmt.Sprintf("u%d@acme.example", i)})
	}
	if err := sim.SetExtensions(org, exts); err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	client := &http.Client{Transport: countingTransport{&gets, http.DefaultTransport}}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), HTTPClient: client})

	got, err := c.Extensions(ctx(t), org)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(got) != 450 {
		t.Fatalf("got %d extensions, want 450", len(got))
	}
	for i, e := range got {
		if e != exts[i] {
			t.Fatalf("extension %d: got %+v, want %+v", i, e, exts[i])
		}
	}
	if n := gets.Load(); n != 3 {
		t.Errorf("%d requests, want 3 pages of at most 200", n)
	}

	if _, err := c.Extensions(ctx(t), "nobody"); !errors.Is(err, pbx.ErrOrgNotFound) {
		t.Errorf("unknown organisation: got %v, want ErrOrgNotFound", err)
	}
}

func TestDemoSeedIsListed(t *testing.T) {
	sim := onecloudsim.New(onecloudsim.Options{APIKey: testKey, SigningSecret: testSecret})
	if err := sim.Start(""); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := onecloudsim.SeedDemo(sim); err != nil {
		t.Fatal(err)
	}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL()})
	got, err := c.Extensions(ctx(t), onecloudsim.DemoOrg)
	if err != nil {
		t.Fatal(err)
	}
	want := onecloudsim.DemoExtensions()
	if len(got) != len(want) {
		t.Fatalf("got %d demo extensions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("demo extension %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWrongCredentialsAreRefusedWithoutRetry(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	for name, cfg := range map[string]pbx.RESTConfig{
		"wrong secret": {SigningSecret: "another-secret-of-enough-length"},
		"wrong key":    {APIKey: "not-the-key"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			cfg.BaseURL, cfg.ObservePush = sim.URL(), rec.observe
			c := newREST(t, cfg)
			err := c.Publish(ctx(t), update("2002", presence.Busy, 1))
			if !errors.Is(err, pbx.ErrUnauthorized) {
				t.Fatalf("got %v, want ErrUnauthorized", err)
			}
			if o := rec.last(t); o.Attempts != 1 || o.Outcome != pbx.PushRefused {
				t.Errorf("observation %+v, want one refused attempt", o)
			}
			if state, _ := sim.LineState(org, "2002"); state != "" {
				t.Errorf("a refused push set the state to %q", state)
			}
			if _, err := c.Extensions(ctx(t), org); !errors.Is(err, pbx.ErrUnauthorized) {
				t.Errorf("list: got %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestRetriesOn5xxAnd429ThenSucceeds(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{RetryAfterSeconds: 1})
	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), MaxRetries: 3, ObservePush: rec.observe})

	sim.InjectError(http.StatusServiceUnavailable, 1)
	sim.InjectError(http.StatusInternalServerError, 1)
	if err := c.Publish(ctx(t), update("2001", presence.Busy, 1)); err != nil {
		t.Fatalf("publish after two 5xx: %v", err)
	}
	if o := rec.last(t); o.Attempts != 3 || o.Outcome != pbx.PushApplied {
		t.Errorf("observation %+v, want applied on attempt 3", o)
	}
	if state, _ := sim.LineState(org, "2001"); state != presence.Busy {
		t.Errorf("state %q, want busy", state)
	}

	sim.InjectError(http.StatusTooManyRequests, 1)
	start := time.Now()
	if err := c.Publish(ctx(t), update("2001", presence.Away, 2)); err != nil {
		t.Fatalf("publish after 429: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, but Retry-After asked for 1 s", waited)
	}
	if o := rec.last(t); o.Attempts != 2 {
		t.Errorf("observation %+v, want 2 attempts", o)
	}
	if n := sim.Pushes(org, "2001"); n != 2 {
		t.Errorf("pushes %d, want 2", n)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), MaxRetries: 2, ObservePush: rec.observe})

	sim.InjectError(http.StatusBadGateway, 5)
	err := c.Publish(ctx(t), update("2001", presence.Busy, 1))
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("got %v, want a 502 failure", err)
	}
	if o := rec.last(t); o.Attempts != 3 || o.Outcome != pbx.PushFailed {
		t.Errorf("observation %+v, want 3 failed attempts", o)
	}
	// Two injected errors are left: the next call uses them and then succeeds.
	if err := c.Publish(ctx(t), update("2001", presence.Busy, 1)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if o := rec.last(t); o.Attempts != 3 {
		t.Errorf("observation %+v, want 3 attempts", o)
	}

	// The context bounds the retries too.
	slow := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), MaxRetries: 50,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	sim.InjectError(http.StatusServiceUnavailable, 1000)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = slow.Publish(short, update("2001", presence.Away, 2))
	if err == nil {
		t.Fatal("publish succeeded against a failing PBX")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, long past the 300 ms deadline", d)
	}
}

func TestRetriesOnConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here any more

	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: "http://" + addr, MaxRetries: 2,
		ObservePush: rec.observe})
	if err := c.Publish(ctx(t), update("2001", presence.Busy, 1)); err == nil {
		t.Fatal("publish to a closed port succeeded")
	}
	if o := rec.last(t); o.Attempts != 3 {
		t.Errorf("observation %+v, want 3 attempts", o)
	}
}

func TestNotFoundBreaksOnlyThatLink(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL()})
	if !sim.RemoveExtension(org, "2002") {
		t.Fatal("extension 2002 did not exist")
	}

	err := c.Publish(ctx(t), update("2002", presence.Busy, 1))
	if !errors.Is(err, pbx.ErrExtensionNotFound) {
		t.Fatalf("got %v, want ErrExtensionNotFound", err)
	}
	for _, ext := range []string{"2001", "2003"} {
		if err := c.Publish(ctx(t), update(ext, presence.Busy, 1)); err != nil {
			t.Errorf("publish %s: %v", ext, err)
		}
	}

	err = c.Publish(ctx(t), pbx.Update{Org: "gone", Extension: "1", State: presence.Busy,
		Seq: 1})
	if !errors.Is(err, pbx.ErrExtensionNotFound) || !errors.Is(err, pbx.ErrOrgNotFound) {
		t.Errorf("unknown organisation: got %v, want both not-found errors", err)
	}
}

func TestStaleUpdateNeverOverwritesANewerOne(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), ObservePush: rec.observe})

	if err := c.Publish(ctx(t), update("2001", presence.Busy, 5)); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{3, 5} {
		u := update("2001", presence.Available, seq)
		u.IdempotencyKey = fmt.Sprintf("other-change-%d", seq)
		err := c.Publish(ctx(t), u)
		if !errors.Is(err, pbx.ErrStale) {
			t.Fatalf("seq %d: got %v, want ErrStale", seq, err)
		}
		if o := rec.last(t); o.Outcome != pbx.PushStale || o.Attempts != 1 {
			t.Errorf("observation %+v, want one stale attempt", o)
		}
	}
	if state, _ := sim.LineState(org, "2001"); state != presence.Busy {
		t.Errorf("state %q, want the newer busy", state)
	}
	if n := sim.Pushes(org, "2001"); n != 1 {
		t.Errorf("pushes %d, want 1", n)
	}
	if n := sim.StaleRejections(org, "2001"); n != 2 {
		t.Errorf("stale rejections %d, want 2", n)
	}
}

func TestReplayIsAppliedOnce(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	rec := &recorder{}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), ObservePush: rec.observe})

	u := update("2003", presence.DoNotDisturb, 7)
	for range 2 {
		if err := c.Publish(ctx(t), u); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if o := rec.last(t); o.Outcome != pbx.PushReplayed {
		t.Errorf("second publish observed as %q, want replayed", o.Outcome)
	}
	if p, r := sim.Pushes(org, "2003"), sim.Replays(org, "2003"); p != 1 || r != 1 {
		t.Errorf("pushes %d replays %d, want 1 and 1", p, r)
	}

	// The same key for a different change is a caller bug, refused clearly.
	other := u
	other.State = presence.Away
	err := c.Publish(ctx(t), other)
	if err == nil || !strings.Contains(err.Error(), pbx.CodeIdempotencyReused) {
		t.Errorf("reused key: got %v, want %s", err, pbx.CodeIdempotencyReused)
	}
}

// TestLostAnswerIsRetriedAsAReplay loses the answer to the first attempt
// after OneCloud applied it: the retry carries the same key and counts as a
// replay, not a second push.
func TestLostAnswerIsRetriedAsAReplay(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	var keys []string
	var mu sync.Mutex
	client := &http.Client{Transport: &loseFirstAnswer{next: http.DefaultTransport,
		seen: func(k string) { mu.Lock(); keys = append(keys, k); mu.Unlock() }}}
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), HTTPClient: client})

	u := update("2001", presence.Busy, 1)
	u.IdempotencyKey = "" // the connector derives one
	if err := c.Publish(ctx(t), u); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if p, r := sim.Pushes(org, "2001"), sim.Replays(org, "2001"); p != 1 || r != 1 {
		t.Errorf("pushes %d replays %d, want 1 and 1", p, r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("idempotency keys %q, want the same key twice", keys)
	}
	if keys[0] != pbx.DeriveIdempotencyKey(u) {
		t.Errorf("key %q, want the derived %q", keys[0], pbx.DeriveIdempotencyKey(u))
	}
	recs := sim.Received()
	if len(recs) != 2 || recs[0].Outcome != onecloudsim.OutcomeApplied ||
		recs[1].Outcome != onecloudsim.OutcomeReplayed {
		t.Errorf("receipts %+v, want applied then replayed", recs)
	}
}

func TestBadAnswersAreReportedClearly(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
		says   string
	}{
		"not json":        {200, `{"extension":`, "invalid JSON"},
		"empty":           {200, ``, "empty body"},
		"missing seq":     {200, `{"extension":"2001","state":"busy"}`, "field seq is missing"},
		"wrong extension": {200, `{"extension":"9","state":"busy","seq":1}`, "not \"2001\""},
		"bad state":       {200, `{"extension":"2001","state":"red","seq":1}`, "not a line state"},
		"bare 404":        {404, `404 page not found`, "check the base URL"},
		"odd 400":         {400, `<html>`, "not a contract error"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
				r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			c := newREST(t, pbx.RESTConfig{BaseURL: srv.URL})
			err := c.Publish(ctx(t), update("2001", presence.Busy, 1))
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want an error saying %q", err, tc.says)
			}
			if !errors.Is(err, pbx.ErrBadAnswer) {
				t.Errorf("got %v, want ErrBadAnswer", err)
			}
			if errors.Is(err, pbx.ErrExtensionNotFound) {
				t.Errorf("a bad answer was taken for a broken link: %v", err)
			}
		})
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"extensions":[{"email":"x@y"}]}`)
	}))
	defer srv.Close()
	c := newREST(t, pbx.RESTConfig{BaseURL: srv.URL})
	if _, err := c.Extensions(ctx(t), org); !errors.Is(err, pbx.ErrBadAnswer) ||
		!strings.Contains(err.Error(), "no number") {
		t.Errorf("extension without number: got %v", err)
	}
}

func TestConfigIsValidated(t *testing.T) {
	good := pbx.RESTConfig{BaseURL: "https://pbx.example", APIKey: "k",
		SigningSecret: "0123456789abcdef"}
	if _, err := pbx.NewREST(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	bad := map[string]func(c *pbx.RESTConfig){
		"no URL":         func(c *pbx.RESTConfig) { c.BaseURL = "" },
		"ftp":            func(c *pbx.RESTConfig) { c.BaseURL = "ftp://pbx.example" },
		"http remote":    func(c *pbx.RESTConfig) { c.BaseURL = "http://pbx.example" },
		"no host":        func(c *pbx.RESTConfig) { c.BaseURL = "https:///api" },
		"query":          func(c *pbx.RESTConfig) { c.BaseURL = "https://pbx.example/?a=1" },
		"user info":      func(c *pbx.RESTConfig) { c.BaseURL = "https://u:p@pbx.example" },
		"no key":         func(c *pbx.RESTConfig) { c.APIKey = " " },
		"no secret":      func(c *pbx.RESTConfig) { c.SigningSecret = "" },
		"short secret":   func(c *pbx.RESTConfig) { c.SigningSecret = "short" },
		"backoff config": func(c *pbx.RESTConfig) { c.MinBackoff, c.MaxBackoff = time.Second, 1 },
	}
	for name, change := range bad {
		c := good
		change(&c)
		if _, err := pbx.NewREST(c); err == nil {
			t.Errorf("%s: accepted %s", name, c)
		}
	}

	r := newREST(t, pbx.RESTConfig{BaseURL: "http://127.0.0.1:1"})
	for name, u := range map[string]pbx.Update{
		"no org":    {Extension: "1", State: presence.Busy, Seq: 1},
		"no ext":    {Org: "o", State: presence.Busy, Seq: 1},
		"bad state": {Org: "o", Extension: "1", State: "red", Seq: 1},
		"zero seq":  {Org: "o", Extension: "1", State: presence.Busy},
	} {
		if err := r.Publish(ctx(t), u); err == nil {
			t.Errorf("%s: update accepted", name)
		}
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	sim := startSim(t, onecloudsim.Options{})
	core, logs := observer.New(zap.DebugLevel)
	c := newREST(t, pbx.RESTConfig{BaseURL: sim.URL(), Logger: zap.New(core)})

	sim.InjectError(http.StatusServiceUnavailable, 2)
	if err := c.Publish(ctx(t), update("2001", presence.Busy, 1)); err != nil {
		t.Fatal(err)
	}
	if logs.Len() == 0 {
		t.Fatal("retries were not logged")
	}
	cfg := pbx.RESTConfig{BaseURL: sim.URL(), APIKey: testKey, SigningSecret: testSecret}
	zap.New(core).Info("config", zap.Object("pbx", cfg))
	texts := []string{fmt.Sprint(cfg), fmt.Sprintf("%v", cfg)}
	for _, e := range logs.All() {
		texts = append(texts, e.Message, fmt.Sprint(e.ContextMap()))
	}
	for _, s := range texts {
		if strings.Contains(s, testKey) || strings.Contains(s, testSecret) {
			t.Errorf("a secret leaked: %s", s)
		}
	}
}

// TestSignatureVector pins the signature to the worked example in
// docs/onecloud-rest.md, computed there with openssl.
func TestSignatureVector(t *testing.T) {
	body := `{"state":"busy","seq":1,"observedAt":"2026-01-01T00:00:00Z"}`
	got := pbx.Sign([]byte("example-signing-secret"), "1767225600", "PUT",
		"/api/v1/orgs/demo/extensions/1001/line-state", []byte(body))
	want := "v1=3c68823e83acd854d28e22dd3ec5aeff39bfa52e35ac29c2f4a595cc772ac8c6"
	if got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}

type countingTransport struct {
	n    *atomic.Int32
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// loseFirstAnswer delivers every request but drops the answer to the first
// one, as a network cut after the server did its work would.
type loseFirstAnswer struct {
	next http.RoundTripper
	seen func(key string)
	lost atomic.Bool
}

func (l *loseFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	l.seen(r.Header.Get(pbx.HeaderIdempotencyKey))
	res, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if l.lost.CompareAndSwap(false, true) {
		res.Body.Close()
		return nil, errors.New("connection reset (simulated)")
	}
	return res, nil
}
