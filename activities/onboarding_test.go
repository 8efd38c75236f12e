package activities

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

func TestVerifyConsent(t *testing.T) {
	allRoles := graph.Consent{TenantID: testTenant, Roles: []string{"User.Read.All", "Presence.Read.All"}}
	tests := []struct {
		name      string
		consent   graph.Consent
		err       error
		takenBy   string // another org already holds the tenant
		wantType  string // "" means success
		wantWords string // part of the message the admin reads
	}{
		{name: "verified and bound", consent: allRoles},
		{name: "token for another tenant",
			consent:  graph.Consent{TenantID: "99999999-2222-3333-4444-555555555555", Roles: allRoles.Roles},
			wantType: workflows.ErrTenantMismatch, wantWords: "not the one"},
		{name: "a permission was not granted",
			consent:  graph.Consent{TenantID: testTenant, Roles: []string{"User.Read.All"}},
			wantType: workflows.ErrPermissionMissing, wantWords: "Presence.Read.All"},
		{name: "no consent in the tenant",
			err:      &graph.Error{Op: "token", Status: 400, Code: "invalid_client", AADSTS: "AADSTS65001"},
			wantType: workflows.ErrConsentRevoked, wantWords: "AADSTS65001"},
		{name: "OneSync's secret is wrong",
			err:      &graph.Error{Op: "token", Status: 401, Code: "invalid_client", AADSTS: "AADSTS7000215"},
			wantType: workflows.ErrCredentials, wantWords: "Setera"},
		{name: "tenant bound to another organisation", consent: allRoles, takenBy: "org-2",
			wantType: workflows.ErrTenantTaken, wantWords: "another organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openStore(t, false)
			ctx := context.Background()
			if tt.takenBy != "" {
				err := db.CreateOrgWithAdmin(ctx, store.Org{ID: tt.takenBy, Name: "Other Oy"},
					store.Admin{ID: "admin-2", Email: "admin@other.fi"})
				if err != nil {
					t.Fatal(err)
				}
				if err := db.BindTenant(ctx, testTenant, tt.takenBy, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			acts := &Activities{Store: db, Graph: &fakeGraph{consent: tt.consent, consentErr: tt.err}}
			env, cancel := activityEnv(acts)
			defer cancel()

			val, err := env.ExecuteActivity(acts.VerifyConsent,
				workflows.VerifyConsentInput{OrgID: testOrg, TenantID: testTenant})

			if tt.wantType != "" {
				typ, nonRetryable := appErrorType(err)
				if typ != tt.wantType || !nonRetryable || !strings.Contains(err.Error(), tt.wantWords) {
					t.Fatalf("error = %v (type %q, non-retryable %v), want non-retryable %s saying %q",
						err, typ, nonRetryable, tt.wantType, tt.wantWords)
				}
				if tn, err := db.Tenant(ctx, testTenant); err == nil && tn.OrgID == testOrg {
					t.Errorf("tenant was bound to %s despite the failure", testOrg)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyConsent: %v", err)
			}
			var res workflows.VerifyConsentResult
			if err := val.Get(&res); err != nil {
				t.Fatal(err)
			}
			if res.TenantID != testTenant || len(res.Roles) != 2 {
				t.Errorf("result = %+v", res)
			}
			tn, err := db.Tenant(ctx, testTenant)
			if err != nil || tn.OrgID != testOrg || tn.State != store.TenantActive {
				t.Errorf("tenant = %+v, %v; want bound to %s and active", tn, err, testOrg)
			}
			audit, err := db.AuditByOrg(ctx, testOrg, 10)
			if err != nil || !hasAction(audit, "consent-verified") {
				t.Errorf("audit = %+v, %v; want a consent-verified entry", audit, err)
			}
		})
	}
}

func TestImportUsersStoresLinksAndReports(t *testing.T) {
	db := openStore(t, true)
	ctx := context.Background()
	// An earlier import linked 101 to u9, who has since left; its sequence
	// must continue for whoever holds 101 now.
	link(t, db, store.Link{UserID: "u9", Extension: "101"})
	if err := db.SaveStates(ctx, testTenant, []store.StateUpdate{
		{UserID: "u9", LineState: "busy", Seq: 6},
	}); err != nil {
		t.Fatal(err)
	}

	g := &fakeGraph{users: []graph.User{
		member("u1", "Anna Virtanen", "Anna.Virtanen@example.fi", "anna@example.fi"),
		member("u2", "Ben Berg", "", "ben@example.fi", "040 123 4567"),
		member("u3", "Cai Nobody", "cai@example.fi", "cai@example.fi"),
		member("u4", "Eva Twice", "eva@example.fi", "eva@example.fi"),
		{ID: "g1", DisplayName: "Guest", Mail: "guest@partner.com", AccountEnabled: true, UserType: "Guest"},
	}}
	dir := newFakePBX(
		pbx.Extension{Number: "101", Email: "anna.virtanen@example.fi", Name: "Anna"},
		pbx.Extension{Number: "102", Phone: "+358401234567", Name: "Ben"},
		pbx.Extension{Number: "103", Email: "eva@example.fi"},
		pbx.Extension{Number: "104", Email: "eva@example.fi"},
		pbx.Extension{Number: "105", Email: "guest@partner.com", Name: "Partner"},
	)
	acts := &Activities{Store: db, Graph: g, PBX: dir}
	env, cancel := activityEnv(acts)
	defer cancel()

	val, err := env.ExecuteActivity(acts.ImportUsers,
		workflows.ImportUsersInput{OrgID: testOrg, TenantID: testTenant})
	if err != nil {
		t.Fatalf("ImportUsers: %v", err)
	}
	var res workflows.ImportResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}

	if res.Activated != 2 || res.TeamsWithoutExt != 1 || res.ExtWithoutTeams != 3 || res.Ambiguous != 1 {
		t.Errorf("counts = %+v, want 2 activated, 1 Teams user and 3 extensions unmatched, 1 ambiguous", res)
	}
	if !slices.Equal(res.UnmatchedTeams, []string{"Cai Nobody <cai@example.fi>"}) {
		t.Errorf("unmatched Teams users = %q", res.UnmatchedTeams)
	}
	if !slices.Contains(res.UnmatchedExts, "105 Partner <guest@partner.com>") {
		t.Errorf("unmatched extensions = %q, want the guest's extension among them", res.UnmatchedExts)
	}
	if len(res.AmbiguousUsers) != 1 || !strings.Contains(res.AmbiguousUsers[0], "103, 104") {
		t.Errorf("ambiguous = %q, want Eva with extensions 103, 104", res.AmbiguousUsers)
	}

	links := linksByUser(t, db)
	if len(links) != 2 {
		t.Fatalf("stored links = %+v, want u1 and u2 only", links)
	}
	if l := links["u1"]; l.Extension != "101" || l.MatchedBy != MatchedByEmail || l.Seq != 6 ||
		l.LineState != "" {
		t.Errorf("u1 = %+v, want 101 by email, seq 6 carried, no state of its own", l)
	}
	if l := links["u2"]; l.Extension != "102" || l.MatchedBy != MatchedByPhone || l.Email != "ben@example.fi" {
		t.Errorf("u2 = %+v, want 102 by phone with the UPN as address", l)
	}
}

func TestRefreshUsers(t *testing.T) {
	db := openStore(t, true)
	ctx := context.Background()
	link(t, db,
		store.Link{UserID: "u1", Extension: "101"},
		store.Link{UserID: "u2", Extension: "102"},
	)
	if err := db.SaveStates(ctx, testTenant, []store.StateUpdate{
		{UserID: "u2", LineState: "busy", Seq: 3},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeltaLink(ctx, testTenant, "delta-old"); err != nil {
		t.Fatal(err)
	}

	g := &fakeGraph{
		deltaErrs: map[string]error{
			"delta-old": &graph.Error{Op: "users delta", Status: 410, Code: "syncStateNotFound"},
		},
		deltas: map[string]graph.UserDelta{
			// A fresh delta lists everybody: u2 is gone, u3 is new.
			"": {Changed: []graph.User{
				member("u1", "Anna", "anna@example.fi", "anna@example.fi"),
				member("u3", "Cai", "cai@example.fi", "cai@example.fi"),
			}, DeltaLink: "delta-new"},
			"delta-new": {Removed: []string{"u1"}, DeltaLink: "delta-newer"},
		},
	}
	pb := newFakePBX(
		pbx.Extension{Number: "101", Email: "anna@example.fi"},
		pbx.Extension{Number: "102", Email: "ben@example.fi"},
		pbx.Extension{Number: "103", Email: "cai@example.fi"},
	)
	acts := &Activities{Store: db, Graph: g, PBX: pb}
	env, cancel := activityEnv(acts)
	defer cancel()

	res := refresh(t, env, acts)
	if res.Linked != 1 || res.Unlinked != 1 {
		t.Errorf("first refresh = %+v, want u3 linked and u2 unlinked", res)
	}
	if !slices.Equal(g.deltaAsked, []string{"delta-old", ""}) {
		t.Errorf("delta links asked = %q, want the expired one, then a fresh delta", g.deltaAsked)
	}
	if pb.state["102"] != presence.Available || pb.seq["102"] != 4 {
		t.Errorf("u2's extension is %s at seq %d, want released to available at seq 4",
			pb.state["102"], pb.seq["102"])
	}
	links := linksByUser(t, db)
	if _, ok := links["u2"]; ok || links["u3"].Extension != "103" || links["u1"].Extension != "101" {
		t.Errorf("links = %+v, want u1 → 101, u3 → 103, no u2", links)
	}
	if tn, _ := db.Tenant(ctx, testTenant); tn.DeltaLink != "delta-new" {
		t.Errorf("delta link = %q, want delta-new", tn.DeltaLink)
	}

	// The next refresh follows the new link; u1 never pushed, so nothing
	// is released.
	res = refresh(t, env, acts)
	if res.Unlinked != 1 || pb.receivedFor("101") != 0 {
		t.Errorf("second refresh = %+v, 101 pushed %d times; want u1 unlinked, nothing pushed",
			res, pb.receivedFor("101"))
	}
	if _, ok := linksByUser(t, db)["u1"]; ok {
		t.Errorf("u1 still linked after removal")
	}
}

func refresh(t *testing.T, env *testsuite.TestActivityEnvironment, acts *Activities) workflows.RefreshUsersResult {
	t.Helper()
	val, err := env.ExecuteActivity(acts.RefreshUsers,
		workflows.RefreshUsersInput{OrgID: testOrg, TenantID: testTenant})
	if err != nil {
		t.Fatalf("RefreshUsers: %v", err)
	}
	var res workflows.RefreshUsersResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRecordStageMarkTenantRemindStaff(t *testing.T) {
	db := openStore(t, true)
	ctx := context.Background()
	acts := &Activities{Store: db}
	env, cancel := activityEnv(acts)
	defer cancel()

	_, err := env.ExecuteActivity(acts.RecordStage, workflows.RecordStageInput{
		OrgID: testOrg, Stage: workflows.StageAwaitingConsent, Actor: "staff:s1", Note: "looks fine",
		At: time.Now(),
	})
	if err != nil {
		t.Fatalf("RecordStage: %v", err)
	}
	org, err := db.Org(ctx, testOrg)
	if err != nil || org.Stage != string(workflows.StageAwaitingConsent) {
		t.Errorf("org stage = %q, %v; want awaiting-consent", org.Stage, err)
	}

	_, err = env.ExecuteActivity(acts.MarkTenant, workflows.MarkTenantInput{
		OrgID: testOrg, TenantID: testTenant, State: workflows.TenantRevoked, Reason: "AADSTS7000229",
	})
	if err != nil {
		t.Fatalf("MarkTenant: %v", err)
	}
	tn, err := db.Tenant(ctx, testTenant)
	if err != nil || tn.State != "revoked" || tn.Reason != "AADSTS7000229" {
		t.Errorf("tenant = %+v, %v; want revoked with its reason", tn, err)
	}

	_, err = env.ExecuteActivity(acts.MarkTenant, workflows.MarkTenantInput{
		OrgID: testOrg, TenantID: testTenant, State: "exploded",
	})
	if typ, nonRetryable := appErrorType(err); typ != errInvalidInput || !nonRetryable {
		t.Errorf("unknown state gave %v, want a non-retryable invalid input", err)
	}

	_, err = env.ExecuteActivity(acts.RemindStaff, workflows.RemindStaffInput{
		OrgID: testOrg, OrgName: "Example Oy", Waiting: 72 * time.Hour,
	})
	if err != nil {
		t.Fatalf("RemindStaff: %v", err)
	}

	audit, err := db.AuditByOrg(ctx, testOrg, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"stage:awaiting-consent", "tenant:revoked", "remind-staff"} {
		if !hasAction(audit, action) {
			t.Errorf("audit lacks %q: %+v", action, audit)
		}
	}
}

func hasAction(audit []store.Audit, action string) bool {
	for _, a := range audit {
		if a.Action == action {
			return true
		}
	}
	return false
}

// The worker registers *Activities as a whole: its exported methods must be
// exactly the activities the workflows call by name.
func TestExportedMethodsAreTheContractActivities(t *testing.T) {
	want := []string{
		workflows.ActivityRecordStage, workflows.ActivityRemindStaff,
		workflows.ActivityVerifyConsent, workflows.ActivityImportUsers,
		workflows.ActivitySyncPresence, workflows.ActivityRefreshUsers,
		workflows.ActivityReleaseLines, workflows.ActivityMarkTenant,
	}
	typ := reflect.TypeOf(&Activities{})
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	check(t, "exported methods", got, want)
}

// A SIP deployment has no directory API: the import reads the list the
// admin uploaded, which the store keeps by OneSync's organisation id.
func TestImportUsersReadsTheUploadedListOfTheOrganisation(t *testing.T) {
	db := openStore(t, true)
	ctx := context.Background()
	if err := db.SetExtensions(ctx, testOrg, []pbx.Extension{
		{Number: "201", Email: "anna@example.fi"},
	}); err != nil {
		t.Fatal(err)
	}
	g := &fakeGraph{users: []graph.User{member("u1", "Anna", "anna@example.fi", "anna@example.fi")}}
	acts := &Activities{Store: db, Graph: g, PBX: newFakePBX(), Directory: db.Directory()}
	env, cancel := activityEnv(acts)
	defer cancel()

	val, err := env.ExecuteActivity(acts.ImportUsers,
		workflows.ImportUsersInput{OrgID: testOrg, TenantID: testTenant})
	if err != nil {
		t.Fatalf("ImportUsers: %v", err)
	}
	var res workflows.ImportResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Activated != 1 {
		t.Fatalf("%d activated from the uploaded list, want 1", res.Activated)
	}
	links, err := db.Links(ctx, testTenant)
	if err != nil || len(links) != 1 || links[0].Extension != "201" {
		t.Fatalf("links %+v (%v), want anna on 201", links, err)
	}
}
