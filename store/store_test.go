package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/pbx"
)

// pgBase is the PostgreSQL the tests use when it is reachable: the test
// database with trust auth on loopback.
const pgBase = "postgres://%s@127.0.0.1:5432/test?sslmode=disable"

var (
	pgOnce   sync.Once
	pgDSN    string // base DSN with a user that works, "" when unreachable
	pgReason string
)

// probePostgres finds a user PostgreSQL lets in, trying postgres then root.
func probePostgres() {
	pgReason = "PostgreSQL at 127.0.0.1:5432 database test is not reachable"
	for _, user := range []string{"postgres", "root"} {
		dsn := fmt.Sprintf(pgBase, user)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
		if err == nil {
			pgDSN = dsn
			return
		}
		pgReason += fmt.Sprintf("; as %s: %v", user, err)
	}
}

// newPostgresDSN creates a uniquely named schema for one test and returns
// a DSN whose search_path points there; the schema is dropped afterwards.
func newPostgresDSN(t *testing.T) string {
	t.Helper()
	pgOnce.Do(probePostgres)
	testutil.RequireOrSkip(t, pgDSN != "", pgReason)

	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "store_test_" + hex.EncodeToString(b)

	admin, err := sql.Open("pgx", pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return pgDSN + "&search_path=" + schema
}

// eachDB runs fn against a fresh SQLite file and a fresh PostgreSQL schema,
// so that both dialects pass the same suite.
func eachDB(t *testing.T, fn func(t *testing.T, dsn string, db *DB)) {
	t.Helper()
	run := func(t *testing.T, dsn string) {
		db, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("open %s: %v", dsn, err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, dsn, db)
	}

	t.Run("sqlite", func(t *testing.T) {
		run(t, "sqlite:"+filepath.Join(t.TempDir(), "data", "onesync.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		run(t, newPostgresDSN(t))
	})
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// seedOrg stores an organisation with one admin, and optionally binds a
// tenant to it.
func seedOrg(t testing.TB, db *DB, id, tenant string) {
	t.Helper()
	ctx := context.Background()
	err := db.CreateOrgWithAdmin(ctx,
		Org{ID: id, Name: "Org " + id, Stage: "awaiting-approval", CreatedAt: t0},
		Admin{ID: "admin-" + id, Name: "Admin", Email: id + "@example.com", PasswordHash: "h"})
	if err != nil {
		t.Fatalf("seed org %s: %v", id, err)
	}
	if tenant != "" {
		if err := db.BindTenant(ctx, tenant, id, t0); err != nil {
			t.Fatalf("seed tenant %s: %v", tenant, err)
		}
	}
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	for _, dsn := range []string{"", "sqlite:", "mysql://x", "/tmp/x.db"} {
		if db, err := Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "folder", "onesync.db")
	db, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	pragmas := map[string]string{"journal_mode": "wal", "foreign_keys": "1"}
	for name, want := range pragmas {
		for _, pool := range []*sql.DB{db.w, db.r} {
			var got string
			if err := pool.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %q, want %q", name, got, want)
			}
		}
	}
	if db.Dialect() != DialectSQLite {
		t.Errorf("Dialect = %q", db.Dialect())
	}

	mem, err := Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	seedOrg(t, mem, "o1", "t1")
	if tn, err := mem.TenantByOrg(ctx, "o1"); err != nil || tn.ID != "t1" {
		t.Errorf("in-memory store: tenant %+v, %v", tn, err)
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string, db *DB) {
		ctx := context.Background()
		want, err := migrations()
		if err != nil {
			t.Fatal(err)
		}

		got, err := db.Migrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || got[len(got)-1] != want[len(want)-1].version {
			t.Fatalf("applied %v, want versions up to %d", got, want[len(want)-1].version)
		}
		seedOrg(t, db, "o1", "")

		// A restart (even two at once) must apply nothing and keep the data.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				again, err := Open(ctx, dsn)
				if err == nil {
					again.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
		}

		again, err := db.Migrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(got) {
			t.Errorf("after reopen applied %v, want %v", again, got)
		}
		if _, err := db.Org(ctx, "o1"); err != nil {
			t.Errorf("org lost on reopen: %v", err)
		}
	})
}

// TestFirstStartRace opens a fresh database from three handles at once,
// as replicas starting together do: each must come up with the schema
// applied exactly once.
func TestFirstStartRace(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "race.db")
		},
		"postgres": newPostgresDSN,
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsns[name](t)
			ctx := context.Background()
			dbs := make([]*DB, 3)
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dbs[i], errs[i] = Open(ctx, dsn)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				defer dbs[i].Close()
			}
			got, err := dbs[0].Migrations(ctx)
			if err != nil || len(got) == 0 || got[0] != 1 {
				t.Errorf("applied %v, %v", got, err)
			}
		})
	}
}

func TestRegisterDuplicate(t *testing.T) {
	cases := []struct {
		name  string
		org   string
		email string
	}{
		{"same email other case", "Beta Oy", "ADMIN@Acme.example"},
		{"same name other case", "ACME  oy", "other@beta.example"},
		{"both the same", "Acme Oy", "admin@acme.example"},
	}
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		err := db.CreateOrgWithAdmin(ctx, Org{ID: "o1", Name: "Acme Oy"},
			Admin{ID: "a1", Email: "Admin@acme.example", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}

		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				id := fmt.Sprint("dup", i)
				err := db.CreateOrgWithAdmin(ctx, Org{ID: id, Name: c.org},
					Admin{ID: "a-" + id, Email: c.email, PasswordHash: "h"})
				if !errors.Is(err, ErrDuplicate) {
					t.Fatalf("second registration: %v, want ErrDuplicate", err)
				}
				if _, err := db.Org(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("org of refused registration: %v, want ErrNotFound", err)
				}
				if _, err := db.Admin(ctx, "a-"+id); !errors.Is(err, ErrNotFound) {
					t.Errorf("admin of refused registration: %v, want ErrNotFound", err)
				}
			})
		}

		orgs, err := db.Orgs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(orgs) != 1 || orgs[0].ID != "o1" {
			t.Errorf("orgs = %+v, want only o1", orgs)
		}
		a, err := db.AdminByEmail(ctx, " ADMIN@ACME.EXAMPLE ")
		if err != nil || a.ID != "a1" || a.Email != "admin@acme.example" {
			t.Errorf("AdminByEmail = %+v, %v; want a1 stored lower case", a, err)
		}
	})
}

func TestRegisterConcurrentlyOneWins(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.CreateOrgWithAdmin(ctx, Org{ID: fmt.Sprint("o", i), Name: "Same"},
					Admin{ID: fmt.Sprint("a", i), Email: fmt.Sprint("x", i, "@y.example")})
			}()
		}
		wg.Wait()

		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrDuplicate):
				t.Errorf("unexpected error: %v", err)
			}
		}
		orgs, err := db.Orgs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if won != 1 || len(orgs) != 1 {
			t.Errorf("%d registrations won and %d orgs exist, want 1 and 1", won, len(orgs))
		}
	})
}

func TestOrgStageAndOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		for i, id := range []string{"old", "mid", "new"} {
			err := db.CreateOrgWithAdmin(ctx,
				Org{ID: id, Name: id, CreatedAt: t0.Add(time.Duration(i) * time.Hour)},
				Admin{ID: "a-" + id, Email: id + "@x.example"})
			if err != nil {
				t.Fatal(err)
			}
		}
		orgs, err := db.Orgs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range orgs {
			ids = append(ids, o.ID)
		}
		if fmt.Sprint(ids) != "[new mid old]" {
			t.Errorf("Orgs order = %v, want newest first", ids)
		}

		t1, t2 := t0.Add(24*time.Hour), t0.Add(48*time.Hour)
		if err := db.SetOrgStage(ctx, "old", "awaiting-consent", "", t1); err != nil {
			t.Fatal(err)
		}
		if err := db.SetOrgStage(ctx, "old", "awaiting-consent", "token failed", t2); err != nil {
			t.Fatal(err)
		}
		o, err := db.Org(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		if o.Stage != "awaiting-consent" || !o.StageSince.Equal(t1) || o.LastError != "token failed" {
			t.Errorf("org = %+v, want stage since %v with the last error", o, t1)
		}
		if o.CreatedAt != t0 || o.CreatedAt.Location() != time.UTC {
			t.Errorf("created %v, want %v in UTC", o.CreatedAt, t0)
		}

		if err := db.SetOrgProfile(ctx, "old", `{"meetingBusy":false}`); err != nil {
			t.Fatal(err)
		}
		if o, _ := db.Org(ctx, "old"); o.Profile != `{"meetingBusy":false}` {
			t.Errorf("profile = %q", o.Profile)
		}
		if err := db.SetOrgStage(ctx, "nope", "x", "", t1); !errors.Is(err, ErrNotFound) {
			t.Errorf("stage of unknown org: %v, want ErrNotFound", err)
		}
	})
}

func TestStaffAccounts(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		if err := db.CreateStaff(ctx, Staff{ID: "s1", Email: "Ops@Setera.example",
			Name: "Ops", PasswordHash: "h1"}); err != nil {
			t.Fatal(err)
		}
		err := db.CreateStaff(ctx, Staff{ID: "s2", Email: "ops@setera.example", PasswordHash: "h"})
		if !errors.Is(err, ErrDuplicate) {
			t.Errorf("duplicate staff email: %v, want ErrDuplicate", err)
		}

		if err := db.SetStaffPassword(ctx, "s1", "h2"); err != nil {
			t.Fatal(err)
		}
		s, err := db.StaffByEmail(ctx, "OPS@setera.example")
		if err != nil || s.ID != "s1" || s.PasswordHash != "h2" {
			t.Errorf("StaffByEmail = %+v, %v; want s1 with the new hash", s, err)
		}
		if _, err := db.Staff(ctx, "s2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Staff(s2) = %v, want ErrNotFound", err)
		}

		seedOrg(t, db, "o1", "")
		if err := db.SetAdminPassword(ctx, "admin-o1", "new"); err != nil {
			t.Fatal(err)
		}
		if a, err := db.Admin(ctx, "admin-o1"); err != nil || a.PasswordHash != "new" {
			t.Errorf("Admin = %+v, %v; want the new hash", a, err)
		}
	})
}

func TestSessionsExpire(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		for i, exp := range []time.Duration{time.Hour, 3 * time.Hour} {
			err := db.CreateSession(ctx, Session{ID: fmt.Sprint("s", i), Kind: SessionAdmin,
				AccountID: "a1", CSRFToken: "c", CreatedAt: t0, ExpiresAt: t0.Add(exp)})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := db.CreateSession(ctx, Session{ID: "bad", Kind: "root", AccountID: "a"}); err == nil {
			t.Error("session of unknown kind accepted")
		}

		s, err := db.Session(ctx, "s0", t0.Add(59*time.Minute))
		if err != nil || s.AccountID != "a1" || s.Kind != SessionAdmin || s.CSRFToken != "c" {
			t.Fatalf("live session = %+v, %v", s, err)
		}
		if _, err := db.Session(ctx, "s0", t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session: %v, want ErrNotFound", err)
		}

		n, err := db.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour))
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
		}
		if err := db.DeleteSession(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Session(ctx, "s1", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted session: %v, want ErrNotFound", err)
		}
		if err := db.DeleteSession(ctx, "s1"); err != nil {
			t.Errorf("second log out: %v", err)
		}
	})
}

func TestConsentState(t *testing.T) {
	type use struct {
		org, session string
		at           time.Duration // after creation
		want         error
	}
	cases := []struct {
		name string
		uses []use
	}{
		{"single use", []use{
			{"o1", "sess", time.Minute, nil},
			{"o1", "sess", 2 * time.Minute, ErrStateUsed},
		}},
		{"expired", []use{{"o1", "sess", 10 * time.Minute, ErrStateUsed}}},
		{"other org leaves it unspent", []use{
			{"o2", "sess", time.Minute, ErrNotFound},
			{"o1", "sess", time.Minute, nil},
		}},
		{"other session leaves it unspent", []use{
			{"o1", "other", time.Minute, ErrNotFound},
			{"o1", "sess", time.Minute, nil},
		}},
	}
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "")
		seedOrg(t, db, "o2", "")

		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				state := fmt.Sprint("state-", i)
				err := db.CreateConsentRequest(ctx, ConsentRequest{State: state, OrgID: "o1",
					SessionID: "sess", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)})
				if err != nil {
					t.Fatal(err)
				}
				for j, u := range c.uses {
					got, err := db.UseConsentRequest(ctx, state, u.org, u.session, t0.Add(u.at))
					if !errors.Is(err, u.want) || (u.want != nil && err == nil) {
						t.Fatalf("use %d: %v, want %v", j, err, u.want)
					}
					if err == nil && (got.OrgID != "o1" || !got.UsedAt.Equal(t0.Add(u.at))) {
						t.Errorf("use %d returned %+v", j, got)
					}
				}
			})
		}

		_, err := db.UseConsentRequest(ctx, "never-made", "o1", "sess", t0)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown state: %v, want ErrNotFound", err)
		}
		err = db.CreateConsentRequest(ctx, ConsentRequest{State: "x", OrgID: "nope",
			SessionID: "s", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("state for unknown org: %v, want ErrNotFound", err)
		}
	})
}

func TestConsentStateConcurrentUse(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "")
		err := db.CreateConsentRequest(ctx, ConsentRequest{State: "race", OrgID: "o1",
			SessionID: "sess", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}

		// A second handle stands for another portal replica.
		other, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := db
				if i%2 == 1 {
					h = other
				}
				_, errs[i] = h.UseConsentRequest(ctx, "race", "o1", "sess", t0.Add(time.Minute))
			}()
		}
		wg.Wait()

		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrStateUsed):
				t.Errorf("loser got %v, want ErrStateUsed", err)
			}
		}
		if won != 1 {
			t.Errorf("%d uses won, want exactly 1", won)
		}
	})
}

func TestBindTenant(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "")
		seedOrg(t, db, "o2", "")

		if err := db.BindTenant(ctx, "tid", "o1", t0); err != nil {
			t.Fatal(err)
		}
		if err := db.BindTenant(ctx, "tid", "o2", t0.Add(time.Hour)); !errors.Is(err, ErrTenantTaken) {
			t.Fatalf("bind to another org: %v, want ErrTenantTaken", err)
		}
		if tn, _ := db.Tenant(ctx, "tid"); tn.OrgID != "o1" {
			t.Errorf("tenant now belongs to %q, want o1", tn.OrgID)
		}
		if _, err := db.TenantByOrg(ctx, "o2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("o2's tenant: %v, want ErrNotFound", err)
		}

		err := db.SetTenantState(ctx, "tid", TenantRevoked, "AADSTS7000229", t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetDeltaLink(ctx, "tid", "https://graph/delta?token=1"); err != nil {
			t.Fatal(err)
		}
		tn, err := db.TenantByOrg(ctx, "o1")
		if err != nil || tn.State != TenantRevoked || tn.Reason != "AADSTS7000229" {
			t.Fatalf("revoked tenant = %+v, %v", tn, err)
		}

		at := t0.Add(2 * time.Hour)
		if err := db.BindTenant(ctx, "tid", "o1", at); err != nil {
			t.Fatalf("rebind to same org: %v", err)
		}
		tn, err = db.Tenant(ctx, "tid")
		if err != nil || tn.State != TenantActive || tn.Reason != "" || !tn.BoundAt.Equal(at) ||
			tn.DeltaLink != "https://graph/delta?token=1" {
			t.Errorf("rebound tenant = %+v, %v; want active again", tn, err)
		}

		if err := db.BindTenant(ctx, "t2", "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("bind to unknown org: %v, want ErrNotFound", err)
		}
		if err := db.SetTenantState(ctx, "tid", "sleeping", "", t0); err == nil {
			t.Error("unknown tenant state accepted")
		}
		all, err := db.Tenants(ctx)
		if err != nil || len(all) != 1 {
			t.Errorf("Tenants = %+v, %v; want one", all, err)
		}
	})
}

func TestReplaceLinksKeepsStates(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "t1")

		err := db.ReplaceLinks(ctx, "t1", []Link{
			{UserID: "u1", Extension: "100", MatchedBy: "email"},
			{UserID: "u2", Extension: "101", MatchedBy: "email"},
			{UserID: "u3", Extension: "102", MatchedBy: "phone"},
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.SaveStates(ctx, "t1", []StateUpdate{
			{UserID: "u1", Availability: "Busy", Activity: "InACall", LineState: "busy",
				Seq: 5, ChangedAt: t0},
			{UserID: "u2", Availability: "Away", Activity: "Away", LineState: "away",
				Seq: 3, ChangedAt: t0},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.MarkLinkBroken(ctx, "t1", "u1", "404 from PBX"); err != nil {
			t.Fatal(err)
		}

		// The next import: u1 unchanged, u2 moved to another extension,
		// u3 left the tenant, u4 is new.
		err = db.ReplaceLinks(ctx, "t1", []Link{
			{UserID: "u4", Extension: "103", MatchedBy: "upn"},
			{UserID: "u2", Extension: "201", MatchedBy: "phone"},
			{UserID: "u1", Extension: "100", MatchedBy: "email", DisplayName: "One"},
		})
		if err != nil {
			t.Fatal(err)
		}

		links, err := db.Links(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Link{}
		var order []string
		for _, l := range links {
			got[l.UserID] = l
			order = append(order, l.Extension)
		}
		if fmt.Sprint(order) != "[100 103 201]" {
			t.Errorf("extensions in order %v, want [100 103 201]", order)
		}
		if _, ok := got["u3"]; ok {
			t.Error("u3 left the tenant but kept its link")
		}
		u1 := got["u1"]
		if u1.LineState != "busy" || u1.Seq != 5 || !u1.ChangedAt.Equal(t0) ||
			u1.Availability != "Busy" || u1.DisplayName != "One" || u1.OrgID != "o1" || u1.Broken {
			t.Errorf("u1 = %+v, want its busy state kept, new name, not broken", u1)
		}
		u2 := got["u2"]
		if u2.LineState != "" || u2.Seq != 3 || u2.MatchedBy != "phone" {
			t.Errorf("u2 = %+v, want state cleared for the new extension and seq kept", u2)
		}

		byOrg, err := db.LinksByOrg(ctx, "o1")
		if err != nil || len(byOrg) != 3 {
			t.Errorf("LinksByOrg = %d links, %v; want 3", len(byOrg), err)
		}

		if err := db.UpsertLink(ctx, Link{TenantID: "t1", UserID: "u1", Extension: "100",
			MatchedBy: "manual"}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteLink(ctx, "t1", "u4"); err != nil {
			t.Fatal(err)
		}
		links, _ = db.Links(ctx, "t1")
		if len(links) != 2 || links[0].MatchedBy != "manual" || links[0].LineState != "busy" {
			t.Errorf("after upsert and delete: %+v", links)
		}

		if err := db.ReplaceLinks(ctx, "nope", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("links of unknown tenant: %v, want ErrNotFound", err)
		}
		if err := db.MarkLinkBroken(ctx, "t1", "nobody", "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("mark unknown link: %v, want ErrNotFound", err)
		}
	})
}

func TestSeqNeverGoesBackwards(t *testing.T) {
	steps := []struct {
		name     string
		save     StateUpdate
		presence bool // SavePresences instead of SaveStates
		want     Link // Availability, LineState, Seq
	}{
		{"first push", StateUpdate{Availability: "Busy", LineState: "busy", Seq: 10},
			false, Link{Availability: "Busy", LineState: "busy", Seq: 10}},
		{"older push ignored", StateUpdate{Availability: "Available", LineState: "available", Seq: 9},
			false, Link{Availability: "Busy", LineState: "busy", Seq: 10}},
		{"same seq stores the presence only", StateUpdate{Availability: "Busy2",
			LineState: "available", Seq: 10},
			false, Link{Availability: "Busy2", LineState: "busy", Seq: 10}},
		{"newer push", StateUpdate{Availability: "Available", LineState: "available", Seq: 11},
			false, Link{Availability: "Available", LineState: "available", Seq: 11}},
		{"presence only", StateUpdate{Availability: "Away", LineState: "busy", Seq: 11},
			true, Link{Availability: "Away", LineState: "available", Seq: 11}},
		{"stale presence ignored", StateUpdate{Availability: "Offline", Seq: 4},
			true, Link{Availability: "Away", LineState: "available", Seq: 11}},
	}
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "t1")
		if err := db.ReplaceLinks(ctx, "t1", []Link{{UserID: "u1", Extension: "100"}}); err != nil {
			t.Fatal(err)
		}

		for _, s := range steps {
			s.save.UserID = "u1"
			var err error
			if s.presence {
				err = db.SavePresences(ctx, "t1", []StateUpdate{s.save})
			} else {
				err = db.SaveStates(ctx, "t1", []StateUpdate{s.save})
			}
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			links, err := db.Links(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			l := links[0]
			if l.Availability != s.want.Availability || l.LineState != s.want.LineState ||
				l.Seq != s.want.Seq {
				t.Errorf("%s: stored %s/%s seq %d, want %s/%s seq %d", s.name, l.Availability,
					l.LineState, l.Seq, s.want.Availability, s.want.LineState, s.want.Seq)
			}
		}

		// ReplaceLinks and UpsertLink never lower the seq either.
		if err := db.UpsertLink(ctx, Link{TenantID: "t1", UserID: "u1", Extension: "999",
			Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if links, _ := db.Links(ctx, "t1"); links[0].Seq != 11 {
			t.Errorf("seq after moving the link = %d, want 11", links[0].Seq)
		}
	})
}

// seedLinks links n users u0000… to extensions 10000… in tenant t1.
func seedLinks(tb testing.TB, db *DB, n int) {
	tb.Helper()
	links := make([]Link, n)
	for i := range links {
		links[i] = Link{UserID: fmt.Sprintf("u%04d", i), Extension: fmt.Sprint(10000 + i),
			MatchedBy: "email"}
	}
	if err := db.ReplaceLinks(context.Background(), "t1", links); err != nil {
		tb.Fatal(err)
	}
}

func stateBatch(n int, seq int64) []StateUpdate {
	ups := make([]StateUpdate, n)
	for i := range ups {
		ups[i] = StateUpdate{UserID: fmt.Sprintf("u%04d", i), Availability: "Busy",
			Activity: "InACall", LineState: "busy", Seq: seq, ChangedAt: t0}
	}
	return ups
}

func TestSaveStates5000(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "t1")
		seedLinks(t, db, 5000)

		start := time.Now()
		if err := db.SaveStates(ctx, "t1", stateBatch(5000, 1)); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: SaveStates of 5000 rows took %v", db.Dialect(), time.Since(start))

		links, err := db.Links(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, l := range links {
			if l.LineState == "busy" && l.Seq == 1 {
				busy++
			}
		}
		if len(links) != 5000 || busy != 5000 {
			t.Errorf("%d links, %d busy at seq 1; want 5000 and 5000", len(links), busy)
		}
	})
}

// TestConcurrentWriters stands for a worker and a portal writing to one
// SQLite file from two handles at once: no write may fail with a busy
// error.
func TestConcurrentWriters(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "t1")
		seedLinks(t, db, 200)

		other, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for w, h := range []*DB{db, other, db, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					var err error
					if w%2 == 0 {
						err = h.SaveStates(ctx, "t1", stateBatch(200, int64(w*100+i+1)))
					} else {
						err = h.AddAudit(ctx, Audit{Actor: "admin:a", OrgID: "o1",
							Action: "login", At: t0})
						if err == nil {
							_, err = h.Links(ctx, "t1")
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}

		entries, err := db.AuditByOrg(ctx, "o1", 1000)
		if err != nil || len(entries) != 50 {
			t.Errorf("audit entries = %d, %v; want 50", len(entries), err)
		}
	})
}

func TestExtensionsDirectory(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		seedOrg(t, db, "o1", "")
		seedOrg(t, db, "o2", "")

		first := []extRow{{"102", "b@x.example"}, {"101", "a@x.example"}}
		if err := db.SetExtensions(ctx, "o1", toExts(first)); err != nil {
			t.Fatal(err)
		}
		if err := db.SetExtensions(ctx, "o2", toExts([]extRow{{"900", ""}})); err != nil {
			t.Fatal(err)
		}
		second := []extRow{{" 201 ", "c@x.example"}, {"200", ""}}
		if err := db.SetExtensions(ctx, "o1", toExts(second)); err != nil {
			t.Fatal(err)
		}

		got, err := db.Directory().Extensions(ctx, "o1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[{200   } {201 c@x.example  }]" {
			t.Errorf("directory = %v, want only the second upload, trimmed and ordered", got)
		}

		bad := [][]extRow{{{"", "x"}}, {{"1", ""}, {"1", ""}}}
		for _, b := range bad {
			if err := db.SetExtensions(ctx, "o1", toExts(b)); err == nil {
				t.Errorf("SetExtensions(%v) accepted", b)
			}
		}
		if got, _ := db.Extensions(ctx, "o1"); len(got) != 2 {
			t.Errorf("a refused upload changed the directory to %v", got)
		}
		if err := db.SetExtensions(ctx, "nope", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("extensions of unknown org: %v, want ErrNotFound", err)
		}
	})
}

func TestAuditOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, _ string, db *DB) {
		ctx := context.Background()
		entries := []Audit{
			{At: t0.Add(time.Minute), Actor: "staff:s1", OrgID: "o1", Action: "approve"},
			{At: t0, Actor: "admin:a1", OrgID: "o1", Action: "register"},
			{At: t0.Add(time.Hour), Actor: "system", OrgID: "o2", Action: "import"},
			{At: t0.Add(2 * time.Minute), Actor: "admin:a1", OrgID: "o1", Action: "consent"},
			{At: t0.Add(2 * time.Minute), Actor: "system", OrgID: "o1", Action: "import",
				Detail: "12 users"},
		}
		for _, a := range entries {
			if err := db.AddAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AddAudit(ctx, Audit{OrgID: "o1"}); err == nil {
			t.Error("audit entry without actor accepted")
		}

		got, err := db.AuditByOrg(ctx, "o1", 10)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, a := range got {
			actions = append(actions, a.Action)
		}
		if fmt.Sprint(actions) != "[import consent approve register]" {
			t.Errorf("o1's audit = %v, want newest first", actions)
		}
		if got[0].Detail != "12 users" || got[0].ID == 0 || !got[0].At.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("newest entry = %+v", got[0])
		}

		if two, _ := db.AuditByOrg(ctx, "o1", 2); len(two) != 2 || two[1].Action != "consent" {
			t.Errorf("limit 2 gave %+v", two)
		}
	})
}

// extRow is a short way to write an extension in a table.
type extRow struct{ number, email string }

func toExts(rows []extRow) []pbx.Extension {
	out := make([]pbx.Extension, len(rows))
	for i, r := range rows {
		out[i] = pbx.Extension{Number: r.number, Email: r.email}
	}
	return out
}

func BenchmarkSaveStates5000(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	seedOrg(b, db, "o1", "t1")
	seedLinks(b, db, 5000)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := db.SaveStates(ctx, "t1", stateBatch(5000, int64(i+1))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/batch")
}
