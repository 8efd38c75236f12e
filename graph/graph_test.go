package graph_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/graph"
)

const (
	testClientID = "3f2a9c1e-7b4d-4f6a-9e2b-8c1d0a5b6e7f"
	testSecret   = "test-secret-generated-per-run"
)

// startSim serves a simulator on loopback for one test.
func startSim(t *testing.T) *graphsim.Sim {
	t.Helper()
	sim := graphsim.New(graphsim.Options{Seed: 7, ClientID: testClientID,
		ClientSecret: testSecret})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func simConfig(sim *graphsim.Sim, secret string) graph.Config {
	return graph.Config{ClientID: testClientID, ClientSecret: secret, Authority: sim.URL(),
		GraphBaseURL: sim.URL() + "/v1.0"}
}

func consentedTenant(t *testing.T, sim *graphsim.Sim, seed int64) string {
	t.Helper()
	info, err := sim.AddTenant(seed, 5)
	if err != nil {
		t.Fatalf("add tenant: %v", err)
	}
	if err := sim.Consent(info.ID); err != nil {
		t.Fatalf("consent: %v", err)
	}
	return info.ID
}

func tokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("parse claims: %v", err)
	}
	return m
}

// Each AADSTS code the token endpoint answers is classified as GRAPH.md
// states, over real HTTP against the simulator.
func TestTokenErrorsAreClassifiedByAADSTSCode(t *testing.T) {
	sim := startSim(t)
	ctx := context.Background()

	cases := []struct {
		name   string
		setup  func(tenant string)
		tenant func(tenant string) string
		secret string
		class  graph.Class
		status int
		code   string
	}{
		{name: "bad secret", secret: "wrong", class: graph.ClassCredentials,
			status: 401, code: "AADSTS7000215"},
		{name: "secret expired", setup: func(string) { sim.SetSecretExpired(true) },
			class: graph.ClassCredentials, status: 401, code: "AADSTS7000222"},
		{name: "app deleted", setup: func(id string) { _ = sim.DeleteApp(id) },
			class: graph.ClassRevoked, status: 401, code: "AADSTS7000229"},
		{name: "app missing", setup: func(id string) { _ = sim.SetApp(id, graphsim.AppMissing) },
			class: graph.ClassRevoked, status: 400, code: "AADSTS700016"},
		{name: "app disabled",
			setup: func(id string) { _ = sim.SetApp(id, graphsim.AppDisabled) },
			class: graph.ClassRevoked, status: 400, code: "AADSTS7000112"},
		{name: "unknown tenant",
			tenant: func(string) string { return "00000000-1111-4222-8333-444444444444" },
			class:  graph.ClassRevoked, status: 400, code: "AADSTS90002"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant := consentedTenant(t, sim, int64(100+i))
			if tc.setup != nil {
				tc.setup(tenant)
			}
			t.Cleanup(func() { sim.SetSecretExpired(false) })
			if tc.tenant != nil {
				tenant = tc.tenant(tenant)
			}
			secret := testSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			ts, err := graph.NewTokenSource(simConfig(sim, secret))
			if err != nil {
				t.Fatal(err)
			}

			_, err = ts.Token(ctx, tenant)
			f := graph.Classify(err)
			if f.Class != tc.class || f.Status != tc.status || f.Code != tc.code {
				t.Fatalf("got %+v (%v), want class %s status %d code %s",
					f, err, tc.class, tc.status, tc.code)
			}
			if f.Retryable() {
				t.Errorf("%s must not be retryable", tc.code)
			}
		})
	}

	t.Run("never consented", func(t *testing.T) {
		info, err := sim.AddTenant(200, 3)
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := graph.NewTokenSource(simConfig(sim, testSecret))
		_, err = ts.Token(ctx, info.ID)
		if f := graph.Classify(err); f.Class != graph.ClassRevoked || f.Code != "AADSTS65001" {
			t.Fatalf("got %+v, want revoked AADSTS65001", f)
		}
	})
}

func TestClassifyByStatusFirstThenCode(t *testing.T) {
	var nilErr *graph.Error
	cases := []struct {
		name  string
		err   error
		class graph.Class
	}{
		{"nil", nil, graph.ClassNone},
		{"typed nil", nilErr, graph.ClassUnknown},
		{"429", &graph.Error{Status: 429, RetryAfter: 7 * time.Second}, graph.ClassThrottled},
		{"403 even with a revocation code", &graph.Error{Status: 403, AADSTS: "AADSTS700016"},
			graph.ClassPermission},
		{"404", &graph.Error{Status: 404, Code: "ResourceNotFound"}, graph.ClassNotFound},
		{"503 empty body", &graph.Error{Status: 503}, graph.ClassTransient},
		{"500", &graph.Error{Status: 500, Code: "InternalServerError"}, graph.ClassTransient},
		{"400 plain", &graph.Error{Status: 400, Code: "BadRequest"}, graph.ClassBadRequest},
		{"401 graph", &graph.Error{Status: 401, Code: "InvalidAuthenticationToken"},
			graph.ClassCredentials},
		{"code in message", &graph.Error{Status: 400, Message: "AADSTS65001: no consent"},
			graph.ClassRevoked},
		{"timeout", fmt.Errorf("read: %w", context.DeadlineExceeded), graph.ClassTransient},
		{"cancelled", context.Canceled, graph.ClassCanceled},
		{"connection refused", &url.Error{Op: "Post", URL: "http://127.0.0.1:1",
			Err: errors.New("connection refused")}, graph.ClassTransient},
		{"wrapped graph error", fmt.Errorf("sync: %w", &graph.Error{Status: 429}),
			graph.ClassThrottled},
		{"other", errors.New("boom"), graph.ClassUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := graph.Classify(tc.err).Class; got != tc.class {
				t.Fatalf("Classify(%v) = %s, want %s", tc.err, got, tc.class)
			}
		})
	}

	f := graph.Classify(&graph.Error{Status: 429, RetryAfter: 7 * time.Second})
	if f.Wait(1) != 7*time.Second {
		t.Errorf("Wait = %s, want the Retry-After of 7s", f.Wait(1))
	}
	if w := graph.Classify(&graph.Error{Status: 429}).Wait(3); w < 3*time.Second || w > 5*time.Second {
		t.Errorf("backoff for attempt 3 = %s, want about 4s", w)
	}
}

// Hundreds of parallel token requests for two tenants never receive each
// other's token, and each tenant's token is fetched once and cached.
func TestParallelTokensNeverCrossTenants(t *testing.T) {
	sim := startSim(t)
	a, b := consentedTenant(t, sim, 1), consentedTenant(t, sim, 2)
	ts, err := graph.NewTokenSource(simConfig(sim, testSecret))
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := 0; i < 400; i++ {
		tenant := a
		if i%2 == 1 {
			tenant = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(context.Background(), tenant)
			if err != nil {
				errs <- err
				return
			}
			if tok.TenantID != tenant {
				errs <- fmt.Errorf("asked for %s, got token of %s", tenant, tok.TenantID)
				return
			}
			if tid := tokenClaims(t, tok.AccessToken)["tid"]; tid != tenant {
				errs <- fmt.Errorf("asked for %s, access token tid is %v", tenant, tid)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for _, id := range []string{a, b} {
		c, _ := sim.RequestCounts(id)
		if c.Token != 1 {
			t.Errorf("tenant %s: %d token requests, want 1 (cached)", id, c.Token)
		}
	}
	tok, _ := ts.Token(context.Background(), a)
	if !tok.HasRoles(graph.Permissions...) {
		t.Errorf("roles %v lack %v", tok.Roles, graph.Permissions)
	}
	if strings.Contains(tok.String(), tok.AccessToken) || strings.Contains(fmt.Sprintf("%#v", tok), tok.AccessToken) {
		t.Error("AppToken's printed form shows the access token")
	}
}

// A token whose tid is not the tenant asked for is refused, as a cache or
// authority mix-up must never hand one tenant's token to another.
func TestTokenWithForeignTidIsRefused(t *testing.T) {
	asked := "11111111-2222-4333-8444-555555555555"
	other := "99999999-2222-4333-8444-555555555555"
	payload, _ := json.Marshal(map[string]any{"tid": other, "appid": testClientID,
		"roles": graph.Permissions, "exp": time.Now().Add(time.Hour).Unix()})
	token := "e30." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":%q}`, token)
	}))
	defer srv.Close()

	ts, err := graph.NewTokenSource(graph.Config{ClientID: testClientID, ClientSecret: "x",
		Authority: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token(context.Background(), asked)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Code != "tenant_mismatch" {
		t.Fatalf("err = %v, want tenant_mismatch", err)
	}
	if graph.Classify(err).Retryable() {
		t.Error("a tid mismatch must not be retried")
	}
}

func TestConfigValidateAndNoSecretInString(t *testing.T) {
	if err := (graph.Config{}).Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	bad := graph.Config{ClientID: "x", ClientSecret: "s", Authority: "ftp://h",
		GlobalRate: 5000}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "authority") ||
		!strings.Contains(err.Error(), "global rate") {
		t.Fatalf("Validate = %v, want authority and global rate problems", err)
	}
	good := graph.Config{ClientID: "x", ClientSecret: "hunter2-secret"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	d := good.WithDefaults()
	if d.Authority != graph.DefaultAuthority || d.GlobalRate != graph.DefaultGlobalRate {
		t.Errorf("defaults = %s", d)
	}
	js, _ := json.Marshal(good)
	for _, s := range []string{good.String(), fmt.Sprintf("%v %+v %#v", good, good, good), string(js)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
	}
}
