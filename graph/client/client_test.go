package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/graph/client"
	"github.com/setera/onesync/presence"
)

const (
	testClientID = "3f2a9c1e-7b4d-4f6a-9e2b-8c1d0a5b6e7f"
	testSecret   = "client-test-secret"
)

func setup(t *testing.T, opts ...client.Option) (*graphsim.Sim, *client.Client) {
	t.Helper()
	sim := graphsim.New(graphsim.Options{Seed: 11, ClientID: testClientID,
		ClientSecret: testSecret})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	c, err := client.New(graph.Config{ClientID: testClientID, ClientSecret: testSecret,
		Authority: sim.URL(), GraphBaseURL: sim.URL() + "/v1.0"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func tenantOf(t *testing.T, sim *graphsim.Sim, seed int64, n int, members bool) string {
	t.Helper()
	add := sim.AddTenant
	if members {
		add = sim.AddMemberTenant
	}
	info, err := add(seed, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Consent(info.ID); err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func ids(t *testing.T, sim *graphsim.Sim, tenant string) []string {
	t.Helper()
	users, err := sim.Users(tenant)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

func TestListUsersReadsEveryPage(t *testing.T) {
	sim, c := setup(t)
	ctx := context.Background()

	tenant := tenantOf(t, sim, 1, 999+1, true)
	users, err := c.ListUsers(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1000 {
		t.Fatalf("imported %d users, want exactly 1000", len(users))
	}
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u.ID] || u.UPN == "" || u.DisplayName == "" {
			t.Fatalf("duplicate or empty user %+v", u)
		}
		seen[u.ID] = true
	}
	if n, _ := sim.RequestCounts(tenant); n.Users != 2 {
		t.Errorf("%d users requests, want 2 pages of 999", n.Users)
	}

	mixed := tenantOf(t, sim, 2, 300, false)
	all, _ := sim.Users(mixed)
	want := 0
	for _, u := range all {
		if u.Member() {
			want++
		}
	}
	got, err := c.ListUsers(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != want || want == len(all) {
		t.Errorf("mixed tenant: %d users, want %d enabled members of %d", len(got), want, len(all))
	}
}

func TestPresencesBatchesOf650(t *testing.T) {
	sim, c := setup(t)
	tenant := tenantOf(t, sim, 3, 1400, true)
	all := ids(t, sim, tenant)

	res, err := c.Presences(context.Background(), tenant, all)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 3 || len(res.Presences) != 1400 || len(res.Failed) != 0 {
		t.Fatalf("requests %d, presences %d, failed %d; want 3, 1400, 0",
			res.Requests, len(res.Presences), len(res.Failed))
	}
	if n, _ := sim.RequestCounts(tenant); n.Presences != 3 {
		t.Errorf("simulator saw %d presence requests, want 3", n.Presences)
	}

	at, err := sim.SetPresence(tenant, all[5], "Busy", "InAConferenceCall")
	if err != nil || at.IsZero() {
		t.Fatal(err)
	}
	res, _ = c.Presences(context.Background(), tenant, all[:10])
	if p := res.Presences[all[5]]; p.Availability != "Busy" || p.Activity != "InAConferenceCall" {
		t.Errorf("presence of changed user = %+v", p)
	}
}

// One bad id fails only itself: its batch is split until it is alone.
func TestOneBadIDNeverStopsTheTenant(t *testing.T) {
	sim, c := setup(t)
	tenant := tenantOf(t, sim, 4, 1400, true)
	all := ids(t, sim, tenant)
	bad := all[700]
	if err := sim.FailID(tenant, bad); err != nil {
		t.Fatal(err)
	}

	res, err := c.Presences(context.Background(), tenant, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Presences) != 1399 || len(res.Failed) != 1 || res.Failed[bad] == nil {
		t.Fatalf("presences %d, failed %v", len(res.Presences), res.Failed)
	}
	if graph.Classify(res.Failed[bad]).Class != graph.ClassBadRequest {
		t.Errorf("bad id failure = %v", res.Failed[bad])
	}
}

// A presence endpoint that refuses every batch with 404 must not be split
// down to one request per id: that would be thousands of reads a poll.
func TestRefusingEndpointCostsBoundedReads(t *testing.T) {
	sim, c := setup(t)
	tenant := tenantOf(t, sim, 7, 1400, true)
	all := ids(t, sim, tenant)
	if err := sim.InjectError(tenant, http.StatusNotFound, 100000); err != nil {
		t.Fatal(err)
	}

	res, err := c.Presences(context.Background(), tenant, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1400 {
		t.Errorf("%d ids failed, want all 1,400", len(res.Failed))
	}
	if res.Requests > 3+64 {
		t.Errorf("%d reads for a refusing endpoint, want at most the 3 batches and 64 splits",
			res.Requests)
	}
}

// C2: a 429 with Retry-After: 2 is waited out and the read then succeeds,
// while another tenant reads on undisturbed.
func TestThrottledTenantWaitsOthersDoNot(t *testing.T) {
	sim, c := setup(t)
	slow := tenantOf(t, sim, 5, 20, true)
	fast := tenantOf(t, sim, 6, 20, true)
	ctx := context.Background()
	// Warm the tokens so that the timing below is about Graph only.
	if _, err := c.VerifyConsent(ctx, slow); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyConsent(ctx, fast); err != nil {
		t.Fatal(err)
	}
	if err := sim.InjectThrottle(slow, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var slowRes graph.PresenceResult
	var slowErr error
	var slowTook time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		slowRes, slowErr = c.Presences(ctx, slow, ids(t, sim, slow))
		slowTook = time.Since(start)
	}()

	time.Sleep(200 * time.Millisecond) // let the slow tenant meet its 429
	start := time.Now()
	fastRes, err := c.Presences(ctx, fast, ids(t, sim, fast))
	fastTook := time.Since(start)
	wg.Wait()

	if slowErr != nil || len(slowRes.Presences) != 20 || slowRes.Requests != 2 {
		t.Fatalf("throttled tenant: %v, %d presences in %d requests",
			slowErr, len(slowRes.Presences), slowRes.Requests)
	}
	if slowTook < 2*time.Second {
		t.Errorf("throttled tenant retried after %s, before Retry-After: 2", slowTook)
	}
	if err != nil || len(fastRes.Presences) != 20 {
		t.Fatalf("other tenant: %v, %d presences", err, len(fastRes.Presences))
	}
	if fastTook > 1500*time.Millisecond {
		t.Errorf("other tenant took %s while one tenant was throttled", fastTook)
	}
}

func TestVerifyConsentAndRevocation(t *testing.T) {
	sim, c := setup(t)
	ctx := context.Background()
	tenant := tenantOf(t, sim, 7, 5, false)

	consent, err := c.VerifyConsent(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if consent.TenantID != tenant || len(consent.Roles) < 2 {
		t.Errorf("consent = %+v", consent)
	}

	never, _ := sim.AddTenant(8, 3)
	if _, err := c.VerifyConsent(ctx, never.ID); graph.Classify(err).Class != graph.ClassRevoked {
		t.Errorf("unconsented tenant: %v", err)
	}

	// C7: the customer deletes the app; a fresh process (no cached token)
	// sees the revocation class, without retrying it.
	if err := sim.DeleteApp(tenant); err != nil {
		t.Fatal(err)
	}
	c2, err := client.New(graph.Config{ClientID: testClientID, ClientSecret: testSecret,
		Authority: sim.URL(), GraphBaseURL: sim.URL() + "/v1.0"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := sim.RequestCounts(tenant)
	_, err = c2.Presences(ctx, tenant, ids(t, sim, tenant))
	f := graph.Classify(err)
	if f.Class != graph.ClassRevoked || f.Code != "AADSTS7000229" {
		t.Fatalf("after deletion: %+v (%v), want revoked AADSTS7000229", f, err)
	}
	after, _ := sim.RequestCounts(tenant)
	if after.Token-before.Token != 1 {
		t.Errorf("%d token requests after revocation, want 1 (no retry loop)",
			after.Token-before.Token)
	}
}

// C8: Graph answers 403 to the presence read: a missing permission, not
// retried.
func TestPresenceForbiddenIsMissingPermission(t *testing.T) {
	sim, c := setup(t)
	tenant := tenantOf(t, sim, 9, 5, true)
	if err := sim.SetRoles(tenant, []string{"User.Read.All"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Presences(context.Background(), tenant, ids(t, sim, tenant))
	if f := graph.Classify(err); f.Class != graph.ClassPermission || f.Status != 403 {
		t.Fatalf("got %+v (%v), want permission 403", f, err)
	}
	if res.Requests != 1 {
		t.Errorf("%d requests, want 1: a 403 is not retried", res.Requests)
	}
	if _, err := c.VerifyConsent(context.Background(), tenant); graph.Classify(err).Class !=
		graph.ClassPermission {
		t.Errorf("VerifyConsent without Presence.Read.All: %v", err)
	}
}

// C9: 404, 403, 429 and 503 with OData bodies, and once with an empty
// body, are classified by status, and nothing panics.
func TestSDKErrorsAreClassifiedByStatus(t *testing.T) {
	sim, c := setup(t, client.WithMaxRetries(0))
	tenant := tenantOf(t, sim, 10, 5, true)
	ctx := context.Background()
	users := ids(t, sim, tenant)

	cases := []struct {
		name   string
		inject func() error
		class  graph.Class
		status int
	}{
		{"404", func() error { return sim.InjectError(tenant, 404, 1) }, graph.ClassNotFound, 404},
		{"403", func() error { return sim.InjectError(tenant, 403, 1) }, graph.ClassPermission, 403},
		{"429", func() error { return sim.InjectThrottle(tenant, 1, time.Second) },
			graph.ClassThrottled, 429},
		{"503", func() error { return sim.InjectError(tenant, 503, 1) }, graph.ClassTransient, 503},
		{"503 empty body", func() error { return sim.InjectEmptyError(tenant, 503, 1) },
			graph.ClassTransient, 503},
		{"500 empty body", func() error { return sim.InjectEmptyError(tenant, 500, 1) },
			graph.ClassTransient, 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.inject(); err != nil {
				t.Fatal(err)
			}
			_, err := c.ListUsers(ctx, tenant)
			var ge *graph.Error
			if !errors.As(err, &ge) {
				t.Fatalf("err %T %v is not a *graph.Error", err, err)
			}
			f := graph.Classify(err)
			if f.Class != tc.class || f.Status != tc.status {
				t.Fatalf("got %+v (%v), want %s %d", f, err, tc.class, tc.status)
			}
			if tc.status == 429 && f.RetryAfter != time.Second {
				t.Errorf("Retry-After = %s, want 1s", f.RetryAfter)
			}
		})
	}
	// Let the 429's pause end so the simulator can be closed cleanly.
	if _, err := c.Presences(ctx, tenant, users); err != nil {
		t.Fatal(err)
	}
}

func TestUserChangesFollowsDelta(t *testing.T) {
	sim, c := setup(t)
	ctx := context.Background()
	tenant := tenantOf(t, sim, 12, 450, false)
	all := ids(t, sim, tenant)

	first, err := c.UserChanges(ctx, tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Changed) != 450 || first.DeltaLink == "" {
		t.Fatalf("first delta: %d changed, link %q", len(first.Changed), first.DeltaLink)
	}
	if n, _ := sim.RequestCounts(tenant); n.Delta != 3 {
		t.Errorf("%d delta pages, want 3 of 200", n.Delta)
	}

	_ = sim.RemoveUser(tenant, all[3])
	_ = sim.SetAccountEnabled(tenant, all[4], false)
	next, err := c.UserChanges(ctx, tenant, first.DeltaLink)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Removed) != 1 || next.Removed[0] != all[3] {
		t.Errorf("removed = %v, want [%s]", next.Removed, all[3])
	}
	if len(next.Changed) != 1 || next.Changed[0].ID != all[4] || next.Changed[0].Member() {
		t.Errorf("changed = %+v, want the disabled user", next.Changed)
	}

	if _, err := c.UserChanges(ctx, tenant, "http://203.0.113.9/v1.0/users/delta"); err == nil {
		t.Error("a delta link to another host was followed")
	}
}

func TestSetAndClearPresence(t *testing.T) {
	sim, c := setup(t)
	ctx := context.Background()
	tenant := tenantOf(t, sim, 13, 3, true)
	// Writing presence needs a permission OneSync does not ask for yet.
	if err := sim.SetRoles(tenant, append(slices.Clone(graph.Permissions),
		"Presence.ReadWrite.All")); err != nil {
		t.Fatal(err)
	}
	user := ids(t, sim, tenant)[0]
	if _, err := sim.SetPresence(tenant, user, "Available", "Available"); err != nil {
		t.Fatal(err)
	}

	if err := c.SetPresence(ctx, tenant, user,
		presencePair("Busy", "InACall")); err != nil {
		t.Fatal(err)
	}
	p, _, _ := sim.Presence(tenant, user)
	if p.Availability != "Busy" || p.Activity != "InACall" {
		t.Fatalf("after SetPresence: %+v", p)
	}
	if err := c.ClearPresence(ctx, tenant, user); err != nil {
		t.Fatal(err)
	}
	p, _, _ = sim.Presence(tenant, user)
	if p.Availability != "Available" {
		t.Fatalf("after ClearPresence: %+v", p)
	}
	err := c.SetPresence(ctx, tenant, user, presencePair("Offline", "Sleeping"))
	if graph.Classify(err).Class != graph.ClassBadRequest {
		t.Errorf("unsupported pair: %v", err)
	}
}

func presencePair(availability, activity string) presence.Presence {
	return presence.Presence{Availability: availability, Activity: activity}
}
