package onecloudsim_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

const (
	key    = "sim-test-key"
	secret = "sim-test-secret-3c1d0f"
)

func start(t *testing.T) *onecloudsim.Sim {
	t.Helper()
	sim := onecloudsim.New(onecloudsim.Options{APIKey: key, SigningSecret: secret})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := onecloudsim.SeedDemo(sim); err != nil {
		t.Fatal(err)
	}
	return sim
}

// send makes a raw request, signed with the given secret at time ts.
func send(t *testing.T, sim *onecloudsim.Sim, method, path, body, bearer, signSecret string,
	ts time.Time, idem string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, sim.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signSecret))
	mac.Write([]byte(stamp + "\n" + method + "\n" + path + "\n" + body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("X-OneCloud-Timestamp", stamp)
	req.Header.Set("X-OneCloud-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
	}
	return res.StatusCode, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestContractRefusesBadRequests(t *testing.T) {
	sim := start(t)
	path := "/api/v1/orgs/demo/extensions/1001/line-state"
	body := `{"state":"busy","seq":1,"observedAt":"2026-01-01T00:00:00Z"}`
	now := time.Now()

	cases := []struct {
		name               string
		method, path, body string
		bearer, sign, idem string
		ts                 time.Time
		wantStatus         int
		wantCode           string
	}{
		{"no key", "PUT", path, body, "", secret, "k1", now, 401, "unauthorized"},
		{"wrong key", "PUT", path, body, "nope", secret, "k1", now, 401, "unauthorized"},
		{"wrong secret", "PUT", path, body, key, "other", "k1", now, 401, "invalid_signature"},
		{"old timestamp", "PUT", path, body, key, secret, "k1", now.Add(-time.Hour), 401,
			"invalid_signature"},
		{"no idempotency key", "PUT", path, body, key, secret, "", now, 400, "invalid_request"},
		{"bad state", "PUT", path, `{"state":"red","seq":1}`, key, secret, "k2", now, 400,
			"invalid_request"},
		{"no seq", "PUT", path, `{"state":"busy"}`, key, secret, "k3", now, 400,
			"invalid_request"},
		{"not json", "PUT", path, `{`, key, secret, "k4", now, 400, "invalid_request"},
		{"unknown field", "PUT", path, `{"state":"busy","seq":1,"colour":"red"}`, key, secret,
			"k5", now, 400, "invalid_request"},
		{"unknown extension", "PUT", "/api/v1/orgs/demo/extensions/7777/line-state", body, key,
			secret, "k6", now, 404, "extension_not_found"},
		{"unknown org", "PUT", "/api/v1/orgs/nope/extensions/1001/line-state", body, key,
			secret, "k7", now, 404, "org_not_found"},
		{"bad page size", "GET", "/api/v1/orgs/demo/extensions?pageSize=0", "", key, secret,
			"", now, 400, "invalid_request"},
		{"bad page token", "GET", "/api/v1/orgs/demo/extensions?pageToken=zz", "", key, secret,
			"", now, 400, "invalid_request"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", key, secret, "", now, 404,
			"not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := send(t, sim, c.method, c.path, c.body, c.bearer, c.sign, c.ts, c.idem)
			if status != c.wantStatus || errCode(out) != c.wantCode {
				t.Errorf("got %d %v, want %d %s", status, out, c.wantStatus, c.wantCode)
			}
		})
	}
	if st, at := sim.LineState("demo", "1001"); st != "" || !at.IsZero() {
		t.Errorf("a refused request changed 1001 to %q", st)
	}

	// The same request, properly signed, goes through and reads back.
	if status, out := send(t, sim, "PUT", path, body, key, secret, now, "ok"); status != 200 {
		t.Fatalf("good request: %d %v", status, out)
	}
	status, out := send(t, sim, "GET", path, "", key, secret, now, "")
	if status != 200 || out["state"] != "busy" || out["seq"] != float64(1) {
		t.Errorf("read back %d %v", status, out)
	}
}

func TestInjectedErrorsAndRetryAfter(t *testing.T) {
	sim := start(t)
	sim.InjectError(http.StatusTooManyRequests, 1)
	req, _ := http.NewRequest("GET", sim.URL()+"/api/v1/orgs/demo/extensions", nil)
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(pbx.HeaderTimestamp, stamp)
	req.Header.Set(pbx.HeaderSignature, pbx.Sign([]byte(secret), stamp, "GET",
		"/api/v1/orgs/demo/extensions", nil))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "1" {
		t.Errorf("got %d Retry-After %q, want 429 and 1", res.StatusCode,
			res.Header.Get("Retry-After"))
	}
}

func TestDemoExtensions(t *testing.T) {
	exts := onecloudsim.DemoExtensions()
	if len(exts) != 12 {
		t.Fatalf("%d demo extensions, want 12", len(exts))
	}
	byEmail, phoneOnly, neither := 0, 0, 0
	ascii := regexp.MustCompile(`^[a-z]+\.[a-z]+@demo-oy\.example$`)
	for _, e := range exts {
		switch {
		case e.Email != "":
			byEmail++
			if !ascii.MatchString(e.Email) {
				t.Errorf("%s: email %q is not firstname.lastname@demo-oy.example", e.Number, e.Email)
			}
		case e.Phone != "":
			phoneOnly++
			if e.Name != "Aada Koskinen" || e.Phone != "+358401234510" {
				t.Errorf("phone-only extension %+v, want Aada Koskinen +358401234510", e)
			}
		default:
			neither++
		}
	}
	if byEmail != 9 || phoneOnly != 1 || neither != 2 {
		t.Errorf("by email %d, phone only %d, neither %d; want 9, 1, 2", byEmail, phoneOnly, neither)
	}
	want := map[string]string{"1000": "Reception", "1001": "aino.virtanen@demo-oy.example",
		"1006": "leo.hamalainen@demo-oy.example", "1009": "vaino.jarvinen@demo-oy.example",
		"1099": "Conference room"}
	for _, e := range exts {
		if w, ok := want[e.Number]; ok && w != e.Email && w != e.Name {
			t.Errorf("%s is %+v, want %s", e.Number, e, w)
		}
		if strings.Contains(e.Email, "lilja") || strings.Contains(e.Email, "eino.") {
			t.Errorf("%s belongs to a user who must have no extension", e.Email)
		}
	}
	if a, b := fmt.Sprint(exts), fmt.Sprint(onecloudsim.DemoExtensions()); a != b {
		t.Error("DemoExtensions is not deterministic")
	}
}

var lampRE = regexp.MustCompile(`<li class="lamp" data-extension="([^"]+)" data-state="([^"]+)"`)

func panelLamps(t *testing.T, sim *onecloudsim.Sim, org string) map[string]string {
	t.Helper()
	res, err := http.Get(sim.URL() + "/panel/" + org)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("panel answered %d", res.StatusCode)
	}
	html, _ := io.ReadAll(res.Body)
	if strings.Contains(string(html), "://cdn") || strings.Contains(string(html), "src=\"http") {
		t.Error("the panel loads something from outside")
	}
	lamps := map[string]string{}
	for _, m := range lampRE.FindAllStringSubmatch(string(html), -1) {
		lamps[m[1]] = m[2]
	}
	return lamps
}

func TestPanelShowsEveryExtensionAndStreamsChanges(t *testing.T) {
	sim := start(t)
	conn, err := pbx.NewREST(pbx.RESTConfig{BaseURL: sim.URL(), APIKey: key,
		SigningSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lamps := panelLamps(t, sim, "demo")
	if len(lamps) != len(onecloudsim.DemoExtensions()) {
		t.Fatalf("panel shows %d lamps, want %d: %v", len(lamps),
			len(onecloudsim.DemoExtensions()), lamps)
	}
	if lamps["1001"] != "unknown" {
		t.Errorf("lamp 1001 is %q before any push, want unknown", lamps["1001"])
	}

	err = conn.Publish(ctx, pbx.Update{Org: "demo", Extension: "1002", State: presence.Away,
		Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := panelLamps(t, sim, "demo")["1002"]; got != "away" {
		t.Errorf("lamp 1002 is %q after a push, want away", got)
	}

	// Open the stream: it begins with every lamp, then carries the change.
	req, _ := http.NewRequestWithContext(ctx, "GET", sim.URL()+"/panel/demo/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan map[string]any, 64)
	go readEvents(res.Body, events)

	snapshot := map[string]string{}
	for len(snapshot) < len(lamps) {
		ev := next(t, ctx, events)
		snapshot[ev["extension"].(string)] = ev["state"].(string)
	}
	if snapshot["1002"] != "away" || snapshot["1001"] != "unknown" {
		t.Errorf("snapshot %v", snapshot)
	}

	before := time.Now().Add(-time.Second)
	err = conn.Publish(ctx, pbx.Update{Org: "demo", Extension: "1001", State: presence.Busy,
		Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, ctx, events)
	if ev["extension"] != "1001" || ev["state"] != "busy" {
		t.Fatalf("event %v, want 1001 busy", ev)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["changedAt"]))
	if err != nil || at.Before(before) {
		t.Errorf("changedAt %v (%v), want the time of the change", ev["changedAt"], err)
	}

	if res, err := http.Get(sim.URL() + "/panel/nope"); err != nil || res.StatusCode != 404 {
		t.Errorf("unknown organisation's panel: %v %v", res.StatusCode, err)
	}
}

// readEvents parses "lamp" events from a server-sent event stream.
func readEvents(r io.Reader, out chan<- map[string]any) {
	sc := bufio.NewScanner(r)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && name == "lamp":
			var m map[string]any
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m) == nil {
				out <- m
			}
		}
	}
	close(out)
}

func next(t *testing.T, ctx context.Context, events <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the deadline")
	}
	return nil
}

func TestStartRefusesNonLoopback(t *testing.T) {
	sim := onecloudsim.New(onecloudsim.Options{APIKey: key, SigningSecret: secret})
	defer sim.Close()
	if err := sim.Start("0.0.0.0:0"); err == nil {
		t.Error("the simulator listened on every interface")
	}
}
