package presencee2e_test

import (
	"testing"
	"time"

	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
)

// A call, a meeting, out of office and a return to Available each reach the
// OneCloud lamp within the interval plus one second of the change in Teams.
// Window boundaries fall among the changes, as they do in production.
func TestTeamsChangesReachTheLampWithinIntervalPlusOneSecond(t *testing.T) {
	t.Parallel()
	s, _ := startDemo(t, window, nil)
	users := graphsim.DemoUsers()
	const org = onecloudsim.DemoOrg

	steps := []struct {
		what   string
		user   int
		action string
		want   presence.LineState
	}{
		{"call starts", 0, "call-start", presence.Busy},
		{"call ends", 0, "call-end", presence.Available},
		{"meeting starts", 1, "meeting-start", presence.Busy},
		{"meeting ends", 1, "meeting-end", presence.Available},
		{"call before out of office", 2, "call-start", presence.Busy},
		// Available/OutOfOffice: out of office never makes a line busy.
		{"out of office", 2, "ooo-start", presence.Available},
		{"away", 3, "away", presence.Away},
		{"available again", 3, "available", presence.Available},
	}
	var worst time.Duration
	for _, st := range steps {
		u := users[st.user]
		d := propagate(t, s, graphsim.DemoTenantID, u.ID, org, demoExt[st.user], st.action,
			st.want)
		t.Logf("%s (%s, ext %s → %s): %s from Teams to OneCloud", st.what, u.DisplayName,
			demoExt[st.user], st.want, d.Round(time.Millisecond))
		if d > maxDelay {
			t.Errorf("%s: %s from Teams to OneCloud, want at most %s", st.what, d, maxDelay)
		}
		worst = max(worst, d)
	}
	t.Logf("worst propagation delay %s (limit %s)", worst.Round(time.Millisecond), maxDelay)

	// Nobody else's lamp moved: one applied push each, the first sync's.
	for i, ext := range demoExt[4:] {
		if n := s.OneCloud.Pushes(org, ext); n != 1 {
			t.Errorf("untouched extension %s (%s): %d applied pushes, want 1", ext,
				users[4+i].DisplayName, n)
		}
	}
}
