package activities_test

import (
	"slices"
	"testing"

	"github.com/setera/onesync/activities"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
)

// The two simulators' demo data are written separately; this test keeps
// them telling the same story that `onesync dev` prints: ten users
// activated, three Teams users and two extensions left without a match.
func TestDemoDataMatchesAsDevPromises(t *testing.T) {
	m := activities.Match(graphsim.DemoUsers(), onecloudsim.DemoExtensions(), "FI")

	if len(m.Pairs) != 10 {
		t.Fatalf("%d demo users matched, want 10", len(m.Pairs))
	}
	var byPhone []string
	for _, p := range m.Pairs {
		if p.By == activities.MatchedByPhone {
			byPhone = append(byPhone, p.User.DisplayName+"="+p.Extension.Number)
		}
	}
	if !slices.Equal(byPhone, []string{"Aada Koskinen=1010"}) {
		t.Errorf("matched by phone: %v, want only Aada Koskinen on 1010", byPhone)
	}

	var users []string
	for _, u := range m.UnmatchedUsers {
		users = append(users, u.DisplayName)
	}
	slices.Sort(users)
	want := []string{"Demo Oy Admin", "Eino Lehtinen", "Lilja Lehtonen"}
	if !slices.Equal(users, want) {
		t.Errorf("Teams users without an extension: %v, want %v", users, want)
	}

	var exts []string
	for _, e := range m.UnmatchedExts {
		exts = append(exts, e.Number)
	}
	slices.Sort(exts)
	if !slices.Equal(exts, []string{"1000", "1099"}) {
		t.Errorf("extensions without a Teams user: %v, want 1000 and 1099", exts)
	}
	if len(m.Ambiguous) != 0 {
		t.Errorf("ambiguous matches in the demo data: %v", m.Ambiguous)
	}
}
