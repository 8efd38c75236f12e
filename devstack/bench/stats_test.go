package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/presence"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		p    float64
		want time.Duration
	}{
		{50, 100 * time.Millisecond},
		{99, 198 * time.Millisecond},
		{99.9, 200 * time.Millisecond},
		{100, 200 * time.Millisecond},
		{0.1, time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%g of 1..200 ms = %s, want %s", c.p, got, c.want)
		}
	}
	if got := percentile(ds[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one value = %s, want it", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %s, want 0", got)
	}
}

// Each change is matched to the first receipt of its own extension with
// its new state after it: not an earlier receipt, not another
// extension's, not a replay, not a receipt of the other state.
func TestDelaysMatchTheFirstReceiptOfTheNewState(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rc := func(org, ext string, st presence.LineState, ms int, outcome string) onecloudsim.Receipt {
		return onecloudsim.Receipt{Org: org, Extension: ext, State: st, ReceivedAt: at(ms),
			Outcome: outcome}
	}
	receipts := []onecloudsim.Receipt{
		rc("a", "100", presence.Busy, 500, onecloudsim.OutcomeApplied),       // before the change
		rc("b", "100", presence.Busy, 1100, onecloudsim.OutcomeApplied),      // other org
		rc("a", "100", presence.Available, 1200, onecloudsim.OutcomeApplied), // other state
		rc("a", "100", presence.Busy, 1400, onecloudsim.OutcomeReplayed),     // not applied
		rc("a", "100", presence.Busy, 2500, onecloudsim.OutcomeApplied),      // the one
		rc("a", "100", presence.Busy, 2600, onecloudsim.OutcomeApplied),      // later duplicate
		rc("big", "7", presence.Available, 4000, onecloudsim.OutcomeApplied),
	}
	changes := []Change{
		{Org: "a", Extension: "100", State: presence.Busy, At: at(1000)},
		{Org: "big", Extension: "7", State: presence.Available, At: at(3000), Big: true},
		{Org: "big", Extension: "8", State: presence.Busy, At: at(3000), Big: true}, // lost
	}

	all, big := delays(changes, receipts)
	if all.Changes != 3 || all.Lost != 1 {
		t.Errorf("all: %d changes, %d lost; want 3 and 1", all.Changes, all.Lost)
	}
	if all.P50 != 1000*time.Millisecond || all.Max != 1500*time.Millisecond {
		t.Errorf("all: p50 %s, max %s; want 1s and 1.5s", all.P50, all.Max)
	}
	if big.Changes != 2 || big.Lost != 1 || big.P99 != time.Second {
		t.Errorf("big: %+v; want 2 changes, 1 lost, p99 1s", big)
	}
}

// A push counts as unchanged when the extension already held that state,
// judged from the whole log, and only receipts from the measured period on
// are counted.
func TestPushFiguresCountUnchangedStates(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rc := func(ext string, st presence.LineState, s int, outcome string) onecloudsim.Receipt {
		return onecloudsim.Receipt{Org: "a", Extension: ext, State: st,
			ReceivedAt: t0.Add(time.Duration(s) * time.Second), Outcome: outcome}
	}
	receipts := []onecloudsim.Receipt{
		rc("1", presence.Available, 1, onecloudsim.OutcomeApplied), // before: sets the state
		rc("2", presence.Available, 1, onecloudsim.OutcomeApplied),
		rc("1", presence.Available, 5, onecloudsim.OutcomeReplayed),
		rc("1", presence.Available, 11, onecloudsim.OutcomeApplied), // unchanged
		rc("2", presence.Busy, 12, onecloudsim.OutcomeApplied),
		rc("2", presence.Busy, 13, onecloudsim.OutcomeReplayed),
		rc("2", presence.Available, 14, onecloudsim.OutcomeStale),
		rc("3", presence.Busy, 15, onecloudsim.OutcomeApplied), // first ever: a change
	}
	got := pushFigures(receipts, t0.Add(10*time.Second))
	want := Pushes{Applied: 3, Unchanged: 1, Replayed: 1, Stale: 1}
	if got != want {
		t.Errorf("push figures %+v, want %+v", got, want)
	}
}

func TestIdealRequests(t *testing.T) {
	for users, want := range map[int]int{1: 1, 50: 1, 650: 1, 651: 2, 1300: 2, 5000: 8} {
		if got := idealRequests(users); got != want {
			t.Errorf("ideal requests for %d users = %d, want %d", users, got, want)
		}
	}
}

func TestValidateRefusesAbsurdSizes(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("the default size is refused: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"too many tenants", func(c *Config) { c.Tenants = MaxTenants + 1 }, "tenants"},
		{"no users", func(c *Config) { c.Users = 0 }, "users"},
		{"huge big tenant", func(c *Config) { c.BigUsers = 1_000_000 }, "big-users"},
		{"nothing to sync", func(c *Config) { c.Tenants, c.BigUsers = 0, 0 }, "no tenant"},
		{"a day long", func(c *Config) { c.Duration = 24 * time.Hour }, "duration"},
		{"interval too short", func(c *Config) { c.Interval = time.Millisecond }, "interval"},
		{"one interval only", func(c *Config) { c.Duration = 3 * time.Second }, "two intervals"},
		{"tiny window", func(c *Config) { c.Window = time.Second }, "window"},
		{"no changes", func(c *Config) { c.ChangeRate = 0 }, "change-rate"},
		{"more changes than users", func(c *Config) { c.ChangeRate = 900 }, "too high"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestAimJudgesTheFigures(t *testing.T) {
	c := DefaultConfig()
	good := Report{
		Delay:    Delays{Changes: 100, P99: 2900 * time.Millisecond},
		Requests: Requests{Mean: 1, Min: 0.98, Max: 1.02, Ideal: 1, Big: 8.1, BigIdeal: 8},
	}
	if a := aim(c, good); !a.Met() {
		t.Fatalf("aim(%+v) = %+v, want met", good, a)
	}

	slow := good
	slow.Delay.P99 = 3 * time.Second
	if aim(c, slow).Delay {
		t.Error("a p99 of exactly interval + 1 s meets the aim; it must be below")
	}
	twice := good
	twice.Requests.Max = 2
	if aim(c, twice).Requests {
		t.Error("a tenant read twice per interval meets the request aim")
	}
	wasted := good
	wasted.Pushes.Unchanged = 1
	if aim(c, wasted).NoUnchanged {
		t.Error("a push of an unchanged state meets the aim")
	}
	lost := good
	lost.Delay.Lost = 1
	if aim(c, lost).Met() {
		t.Error("a lost change meets every aim")
	}
}
