package graph_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/graph"
)

func TestAdminConsentURL(t *testing.T) {
	cfg := graph.Config{ClientID: testClientID, ClientSecret: "s"}
	raw, err := cfg.AdminConsentURL("https://onesync.example/consent/callback", "state-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != "https://login.microsoftonline.com/organizations/v2.0/adminconsent" {
		t.Errorf("endpoint = %s", raw)
	}
	q := u.Query()
	want := map[string]string{"client_id": testClientID, "scope": "https://graph.microsoft.com/.default",
		"redirect_uri": "https://onesync.example/consent/callback", "state": "state-0123456789abcdef"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}

	if _, err := cfg.AdminConsentURL("javascript:alert(1)", "state-0123456789abcdef"); err == nil {
		t.Error("a non-http redirect uri was accepted")
	}
	if _, err := cfg.AdminConsentURL("https://onesync.example/cb", "short"); err == nil {
		t.Error("a short state was accepted")
	}
}

func TestParseConsentCallback(t *testing.T) {
	tenant := "5d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"
	cases := []struct {
		name  string
		query string
		kind  graph.ConsentFailureKind // "" means granted
		code  string
	}{
		{name: "granted", query: "admin_consent=True&tenant=" + tenant +
			"&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&state=abc"},
		{name: "cancel", query: "error=access_denied&error_description=AADSTS65004%3A+User+" +
			"declined+to+consent+to+access+the+app.&state=abc",
			kind: graph.ConsentCancelled, code: "AADSTS65004"},
		{name: "error wins over admin_consent=True",
			query: "error=access_denied&admin_consent=True&tenant=" + tenant + "&state=abc",
			kind:  graph.ConsentDenied},
		{name: "consent_required with admin_consent=True",
			query: "error=consent_required&error_description=AADSTS90094%3A+admin+needed" +
				"&admin_consent=True&tenant=" + tenant + "&state=abc",
			kind: graph.ConsentDenied, code: "AADSTS90094"},
		{name: "other error", query: "error=server_error&error_description=AADSTS50000&state=abc",
			kind: graph.ConsentOther, code: "AADSTS50000"},
		{name: "admin_consent false", query: "admin_consent=False&tenant=" + tenant + "&state=abc",
			kind: graph.ConsentOther},
		{name: "no state", query: "admin_consent=True&tenant=" + tenant, kind: graph.ConsentOther},
		{name: "tenant not an id", query: "admin_consent=True&tenant=evil.example&state=abc",
			kind: graph.ConsentOther},
		{name: "nothing", query: "", kind: graph.ConsentOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			cb, err := graph.ParseConsentCallback(q)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("err = %v, want a grant", err)
				}
				if cb.Tenant != tenant || cb.State != "abc" {
					t.Fatalf("callback = %+v", cb)
				}
				return
			}
			var ce *graph.ConsentError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (callback %+v), want a *ConsentError", err, cb)
			}
			if ce.Kind != tc.kind || ce.Code != tc.code {
				t.Fatalf("failure = %+v, want kind %s code %q", ce, tc.kind, tc.code)
			}
			if cb.Tenant != "" {
				t.Errorf("a failure returned tenant %q", cb.Tenant)
			}
		})
	}
}

// A callback with admin_consent=True and a tenant but a state the caller
// never issued parses as a claim only: the parser hands back the state so
// that the caller's store refuses it. This test plays the caller.
func TestConsentCallbackWithForeignStateIsNotTrusted(t *testing.T) {
	issued := map[string]string{"state-issued-for-org-1": "org-1"} // the caller's store
	q := url.Values{"admin_consent": {"True"},
		"tenant": {"5d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"}, "state": {"state-made-up"}}

	cb, err := graph.ParseConsentCallback(q)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cb.State != "state-made-up" {
		t.Fatalf("state = %q, the caller needs it to look the session up", cb.State)
	}
	if _, ok := issued[cb.State]; ok {
		t.Fatal("a made-up state matched the store")
	}

	q.Del("state")
	if _, err := graph.ParseConsentCallback(q); err == nil {
		t.Fatal("a callback without state was accepted")
	}
}

// One tenant's Retry-After pause never slows another tenant.
func TestBudgetPauseIsPerTenant(t *testing.T) {
	b := graph.NewBudget(1000, 0, 0)
	b.Pause("a", 3*time.Second)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if err := b.WaitPresence(ctx, "b"); err != nil {
			t.Fatalf("tenant b waited: %v", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("tenant b took %s while a was paused", d)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := b.Wait(short, "a"); err == nil {
		t.Error("tenant a was not paused")
	}
	if until := b.PausedUntil("a"); time.Until(until) < 2*time.Second {
		t.Errorf("pause of a ends %s, want about 3s from now", until)
	}
}

// The per-tenant window lets limit requests through and makes the next
// one wait for the window, for that tenant only.
func TestBudgetPresenceWindow(t *testing.T) {
	b := graph.NewBudget(1000, 5, 500*time.Millisecond)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := b.WaitPresence(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.WaitPresence(short, "a"); err == nil {
		t.Fatal("a sixth request fitted a window of five")
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fresh, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := b.WaitPresence(fresh, "b"); err != nil {
			t.Errorf("tenant b was held by a's window: %v", err)
		}
	}()
	wg.Wait()

	start := time.Now()
	if err := b.WaitPresence(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("a waited %s for a 1.5s window", time.Since(start))
	}
}
