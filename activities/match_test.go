package activities

import (
	"slices"
	"sort"
	"testing"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
)

func member(id, name, mail, upn string, phones ...string) graph.User {
	return graph.User{ID: id, DisplayName: name, Mail: mail, UPN: upn, BusinessPhones: phones,
		AccountEnabled: true, UserType: "Member"}
}

func TestMatch(t *testing.T) {
	type want struct {
		pairs     map[string]string // user id → extension number
		by        map[string]string // user id → matched by
		unmatched []string          // user ids
		extsLeft  []string          // extension numbers
		ambiguous []string          // user ids
		excluded  int
	}
	tests := []struct {
		name  string
		users []graph.User
		exts  []pbx.Extension
		want  want
	}{
		{
			name:  "mail matches without regard to case",
			users: []graph.User{member("u1", "Anna", "Anna.Virtanen@Example.FI", "anna@example.onmicrosoft.com")},
			exts:  []pbx.Extension{{Number: "101", Email: "anna.virtanen@example.fi"}},
			want: want{pairs: map[string]string{"u1": "101"},
				by: map[string]string{"u1": MatchedByEmail}},
		},
		{
			name:  "upn matches when mail is empty",
			users: []graph.User{member("u1", "Ben", "", "BEN@example.fi")},
			exts:  []pbx.Extension{{Number: "102", Email: "ben@example.fi"}},
			want: want{pairs: map[string]string{"u1": "102"},
				by: map[string]string{"u1": MatchedByUPN}},
		},
		{
			name:  "national phone format matches E.164",
			users: []graph.User{member("u1", "Cai", "cai@other.fi", "cai@other.fi", "040 123 4567")},
			exts:  []pbx.Extension{{Number: "103", Email: "someone@example.fi", Phone: "+358401234567"}},
			want: want{pairs: map[string]string{"u1": "103"},
				by: map[string]string{"u1": MatchedByPhone}},
		},
		{
			name: "mobile phone matches an international extension phone",
			users: []graph.User{{ID: "u1", DisplayName: "Dan", UPN: "dan@x.fi", MobilePhone: "+358 50 765 4321",
				AccountEnabled: true, UserType: "Member"}},
			exts: []pbx.Extension{{Number: "104", Phone: "050-7654321"}},
			want: want{pairs: map[string]string{"u1": "104"},
				by: map[string]string{"u1": MatchedByPhone}},
		},
		{
			name:  "a user matching two extensions is ambiguous, not guessed",
			users: []graph.User{member("u1", "Eva", "eva@example.fi", "eva.k@example.fi")},
			exts: []pbx.Extension{
				{Number: "105", Email: "eva@example.fi"},
				{Number: "106", Email: "EVA.K@example.fi"},
			},
			want: want{ambiguous: []string{"u1"}, extsLeft: []string{"105", "106"}},
		},
		{
			name: "an extension matched by two users is ambiguous for both",
			users: []graph.User{
				member("u1", "Fia", "fia@a.fi", "fia@a.fi", "+358 9 123 4567"),
				member("u2", "Gus", "gus@a.fi", "gus@a.fi", "09 1234567"),
			},
			exts: []pbx.Extension{{Number: "107", Phone: "+35891234567"}},
			want: want{ambiguous: []string{"u1", "u2"}, extsLeft: []string{"107"}},
		},
		{
			name: "an address match wins over a shared switchboard phone",
			users: []graph.User{
				member("u1", "Reception", "desk@a.fi", "desk@a.fi", "+35891234567"),
				member("u2", "Hal", "hal@a.fi", "hal@a.fi", "+35891234567"),
			},
			exts: []pbx.Extension{{Number: "100", Email: "desk@a.fi", Phone: "+35891234567"}},
			want: want{pairs: map[string]string{"u1": "100"},
				by: map[string]string{"u1": MatchedByEmail}, unmatched: []string{"u2"}},
		},
		{
			name: "guests and disabled accounts are left out",
			users: []graph.User{
				{ID: "g1", Mail: "guest@partner.com", UPN: "guest_partner.com#EXT#@a.fi",
					AccountEnabled: true, UserType: "Guest"},
				{ID: "d1", Mail: "gone@a.fi", UPN: "gone@a.fi", AccountEnabled: false, UserType: "Member"},
			},
			exts: []pbx.Extension{
				{Number: "108", Email: "guest@partner.com"},
				{Number: "109", Email: "gone@a.fi"},
			},
			want: want{excluded: 2, extsLeft: []string{"108", "109"}},
		},
		{
			name: "no match either way is reported on both sides",
			users: []graph.User{
				member("u1", "Ida", "ida@a.fi", "ida@a.fi", "not a number"),
			},
			exts: []pbx.Extension{{Number: "110", Email: "jon@a.fi", Phone: "110"}},
			want: want{unmatched: []string{"u1"}, extsLeft: []string{"110"}},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Match(tt.users, tt.exts, "FI")

			pairs, by := map[string]string{}, map[string]string{}
			for _, p := range m.Pairs {
				pairs[p.User.ID], by[p.User.ID] = p.Extension.Number, p.By
			}
			if !mapsEqual(pairs, tt.want.pairs) || !mapsEqual(by, tt.want.by) {
				t.Errorf("pairs = %v by %v, want %v by %v", pairs, by, tt.want.pairs, tt.want.by)
			}
			var unmatched, left, ambiguous []string
			for _, u := range m.UnmatchedUsers {
				unmatched = append(unmatched, u.ID)
			}
			for _, e := range m.UnmatchedExts {
				left = append(left, e.Number)
			}
			for _, a := range m.Ambiguous {
				ambiguous = append(ambiguous, a.User.ID)
			}
			check(t, "unmatched users", unmatched, tt.want.unmatched)
			check(t, "extensions without user", left, tt.want.extsLeft)
			check(t, "ambiguous users", ambiguous, tt.want.ambiguous)
			if m.Excluded != tt.want.excluded {
				t.Errorf("excluded = %d, want %d", m.Excluded, tt.want.excluded)
			}
		})
	}
}

func TestMatchAmbiguityNamesTheExtensions(t *testing.T) {
	m := Match([]graph.User{member("u1", "Eva", "eva@a.fi", "eva@a.fi")},
		[]pbx.Extension{{Number: "201", Email: "eva@a.fi"}, {Number: "202", Email: "eva@a.fi"}}, "FI")
	if len(m.Ambiguous) != 1 || !slices.Equal(m.Ambiguous[0].Extensions, []string{"201", "202"}) {
		t.Fatalf("ambiguous = %+v, want u1 with extensions 201, 202", m.Ambiguous)
	}
	res := importResult(m)
	want := "Eva <eva@a.fi> (extensions 201, 202)"
	if res.Ambiguous != 1 || len(res.AmbiguousUsers) != 1 || res.AmbiguousUsers[0] != want {
		t.Fatalf("import result lists %q (%d), want %q", res.AmbiguousUsers, res.Ambiguous, want)
	}
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
