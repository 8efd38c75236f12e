package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/graph/client"
)

// C1 for every size around the batch limit: ceil(n/650) requests, every
// presence read, none failed. The simulator answers 400 to a batch of more
// than 650 ids, and the client splits a batch Graph answers 400 to, so an
// oversized batch would show as extra requests or failures here.
func TestCasesC1BatchCountForEverySize(t *testing.T) {
	sim, c := setup(t)
	tenant := tenantOf(t, sim, 21, 2000, true)
	all := ids(t, sim, tenant)
	ctx := context.Background()

	for _, n := range []int{1, 649, 650, 651, 1299, 1300, 1301, 1400, 1950, 1951, 2000} {
		before, _ := sim.RequestCounts(tenant)
		res, err := c.Presences(ctx, tenant, all[:n])
		if err != nil {
			t.Fatalf("%d ids: %v", n, err)
		}
		want := (n + graph.MaxPresenceIDs - 1) / graph.MaxPresenceIDs
		after, _ := sim.RequestCounts(tenant)
		if res.Requests != want || after.Presences-before.Presences != want {
			t.Errorf("%d ids: %d requests (simulator saw %d), want %d", n, res.Requests,
				after.Presences-before.Presences, want)
		}
		if len(res.Presences) != n || len(res.Failed) != 0 {
			t.Errorf("%d ids: %d presences, %d failed", n, len(res.Presences), len(res.Failed))
		}
	}

	// The same ids again in other letter cases count once: 1400 distinct
	// ids in 1500 entries are still 3 requests.
	dup := append([]string(nil), all[:1400]...)
	for _, id := range all[:100] {
		dup = append(dup, strings.ToUpper(id))
	}
	res, err := c.Presences(ctx, tenant, dup)
	if err != nil || res.Requests != 3 || len(res.Failed) != 0 {
		t.Errorf("1400 ids with 100 repeats: %d requests, %d failed, %v; want 3, 0",
			res.Requests, len(res.Failed), err)
	}
	if res, err := c.Presences(ctx, tenant, nil); err != nil || res.Requests != 0 {
		t.Errorf("no ids: %d requests, %v; want none", res.Requests, err)
	}
}

// oddGraph is a Graph and Entra stand-in that answers every Graph request
// with one scripted status, content type and body, to try the client on
// the answers real gateways give besides OData errors.
type oddGraph struct {
	srv *httptest.Server

	mu          sync.Mutex
	status      int
	contentType string
	body        string
	retryAfter  string
	graphCalls  int
}

func newOddGraph(t *testing.T) *oddGraph {
	t.Helper()
	g := &oddGraph{}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *oddGraph) set(status int, contentType, body, retryAfter string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status, g.contentType, g.body, g.retryAfter = status, contentType, body, retryAfter
}

func (g *oddGraph) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.graphCalls
}

func (g *oddGraph) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if tenant, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"),
		"/oauth2/v2.0/token"); ok {
		claims, _ := json.Marshal(map[string]any{"tid": tenant, "appid": testClientID,
			"roles": graph.Permissions, "exp": time.Now().Add(time.Hour).Unix()})
		token := "e30." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":%q}`, token)
		return
	}
	g.mu.Lock()
	g.graphCalls++
	status, ct, body, ra := g.status, g.contentType, g.body, g.retryAfter
	g.mu.Unlock()
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// C9 widened: 403, 404, 429, 500 and 503 with an OData body, no body, and
// JSON bodies that are not OData errors. Every one is a *graph.Error
// classified by its status, on every operation, and nothing panics.
func TestCasesC9EveryBodyIsClassifiedByStatus(t *testing.T) {
	g := newOddGraph(t)
	c, err := client.New(graph.Config{ClientID: testClientID, ClientSecret: testSecret,
		Authority: g.srv.URL, GraphBaseURL: g.srv.URL + "/v1.0"}, client.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	statuses := map[int]graph.Class{403: graph.ClassPermission, 404: graph.ClassNotFound,
		429: graph.ClassThrottled, 500: graph.ClassTransient, 503: graph.ClassTransient}
	bodies := []struct{ name, contentType, body string }{
		{"odata", "application/json",
			`{"error":{"code":"Some","message":"m","innerError":{"date":"2026-03-02T09:00:00",` +
				`"request-id":"5e1f","client-request-id":"5e1f"}}}`},
		{"empty", "", ""},
		{"json not odata", "application/json", `{"message":"gateway timeout"}`},
		{"null error", "application/json", `{"error":null}`},
		{"empty error", "application/json", `{"error":{}}`},
		{"array", "application/json", `[]`},
		{"html", "text/html; charset=utf-8", "<html><body>Bad gateway</body></html>"},
		{"plain text", "text/plain", "upstream connect error"},
		{"cut off json", "application/json", `{"error":{"code":"Ser`},
	}
	ops := []struct {
		name string
		call func(tenant string) error
	}{
		{"list users", func(tenant string) error { _, err := c.ListUsers(ctx, tenant); return err }},
		{"user changes", func(tenant string) error {
			_, err := c.UserChanges(ctx, tenant, "")
			return err
		}},
		{"presences", func(tenant string) error {
			res, err := c.Presences(ctx, tenant, []string{"0d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"})
			if err != nil {
				return err
			}
			for _, e := range res.Failed {
				return e
			}
			return errors.New("presences: no failure reported")
		}},
	}

	n := 0
	for status, class := range statuses {
		for _, b := range bodies {
			for _, op := range ops {
				n++
				// A tenant per case: a 429 pauses only its own tenant.
				tenant := fmt.Sprintf("%08x-9b2c-4e7d-8a41-0c3b9f2e7d15", n)
				name := fmt.Sprintf("%d %s %s", status, b.name, op.name)
				t.Run(name, func(t *testing.T) {
					g.set(status, b.contentType, b.body, "1")
					var err error
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("panic: %v", r)
							}
						}()
						err = op.call(tenant)
					}()
					var ge *graph.Error
					if !errors.As(err, &ge) {
						t.Fatalf("err %T %v is not a *graph.Error", err, err)
					}
					f := graph.Classify(err)
					if f.Class != class || f.Status != status {
						t.Fatalf("got %+v (%v), want %s %d", f, err, class, status)
					}
				})
			}
		}
	}
}

// C8 at the wire: a 403 to the presence read is never retried, and stops
// the read of every further batch of the tenant. The batches read at once
// (at most presenceConcurrency) may each meet the 403 once.
func TestCasesC8ForbiddenIsNotRetried(t *testing.T) {
	g := newOddGraph(t)
	c, err := client.New(graph.Config{ClientID: testClientID, ClientSecret: testSecret,
		Authority: g.srv.URL, GraphBaseURL: g.srv.URL + "/v1.0"})
	if err != nil {
		t.Fatal(err)
	}
	g.set(403, "application/json",
		`{"error":{"code":"Forbidden","message":"Insufficient privileges"}}`, "")
	users := make([]string, 1400)
	for i := range users {
		users[i] = fmt.Sprintf("%08x-9b2c-4e7d-8a41-0c3b9f2e7d15", i)
	}
	res, err := c.Presences(context.Background(), "7d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15", users)
	if f := graph.Classify(err); f.Class != graph.ClassPermission {
		t.Fatalf("got %+v (%v), want a missing permission", f, err)
	}
	if g.calls() > 3 || res.Requests > 3 {
		t.Errorf("%d requests reached Graph (%d counted), want at most one per batch (3)",
			g.calls(), res.Requests)
	}
}
