package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Report is the outcome of one run. Its JSON form is what `onesync bench
// --json` prints; durations are in nanoseconds there.
type Report struct {
	Config ConfigSummary `json:"config"`
	// LoadBefore and LoadAfter are the machine's load averages over 1, 5
	// and 15 minutes at the start and the end of the measured period.
	LoadBefore string        `json:"loadBefore"`
	LoadAfter  string        `json:"loadAfter"`
	SetupTime  time.Duration `json:"setupTime"`

	// Delay is over every change, BigDelay over the big tenant's.
	Delay    Delays   `json:"delay"`
	BigDelay Delays   `json:"bigDelay"`
	Requests Requests `json:"requests"`
	// Polls are the gaps between polls, as the Graph simulator saw them.
	Polls   TenantPolls `json:"polls"`
	Pushes  Pushes      `json:"pushes"`
	History History     `json:"history"`
	Process Process     `json:"process"`
	Aim     Aim         `json:"aim"`
}

// ConfigSummary is the run's size as the report shows it.
type ConfigSummary struct {
	Tenants    int           `json:"tenants"`
	Users      int           `json:"users"`
	BigUsers   int           `json:"bigUsers"`
	Duration   time.Duration `json:"duration"`
	Interval   time.Duration `json:"interval"`
	Window     time.Duration `json:"window"` // 0: the product's default
	ChangeRate float64       `json:"changeRate"`
	Seed       int64         `json:"seed"`
}

func reportConfig(c Config) ConfigSummary {
	return ConfigSummary{Tenants: c.Tenants, Users: c.Users, BigUsers: c.BigUsers,
		Duration: c.Duration, Interval: c.Interval, Window: c.Window,
		ChangeRate: c.ChangeRate, Seed: c.Seed}
}

// requestTolerance is how far a tenant's requests per interval may be from
// the ideal and still meet the aim: the measured period does not start and
// end on a poll, and a new window polls at once, so a tenant polled
// exactly once per interval still shows a little more or less than 1.
const requestTolerance = 0.05

// Aim says which of the product's aims the run met: a p99 delay below
// interval + 1 s, no change lost, exactly the ideal number of presence
// requests per tenant per interval (within requestTolerance), and no push
// of a state the extension already held.
type Aim struct {
	DelayTarget time.Duration `json:"delayTarget"`
	Delay       bool          `json:"delay"`
	NoneLost    bool          `json:"noneLost"`
	Requests    bool          `json:"requests"`
	NoUnchanged bool          `json:"noUnchanged"`
}

// Met reports whether every aim was met.
func (a Aim) Met() bool { return a.Delay && a.NoneLost && a.Requests && a.NoUnchanged }

func aim(c Config, r Report) Aim {
	a := Aim{DelayTarget: c.Interval + time.Second}
	a.Delay = r.Delay.Changes > r.Delay.Lost && r.Delay.P99 < a.DelayTarget
	a.NoneLost = r.Delay.Lost == 0
	near := func(v float64, ideal int) bool {
		return math.Abs(v-float64(ideal)) <= requestTolerance*float64(ideal)
	}
	q := r.Requests
	a.Requests = (c.Tenants == 0 || (near(q.Min, q.Ideal) && near(q.Max, q.Ideal))) &&
		(c.BigUsers == 0 || near(q.Big, q.BigIdeal))
	a.NoUnchanged = r.Pushes.Unchanged == 0
	return a
}

// WriteTable prints the report as a short table for a person.
func (r Report) WriteTable(w io.Writer) error {
	c := r.Config
	var b strings.Builder
	window := "default (5m)"
	if c.Window > 0 {
		window = c.Window.String()
	}
	fmt.Fprintf(&b, "OneSync presence sync benchmark\n")
	fmt.Fprintf(&b, "  %d tenants x %d users", c.Tenants, c.Users)
	if c.BigUsers > 0 {
		fmt.Fprintf(&b, " + 1 tenant x %d users", c.BigUsers)
	}
	fmt.Fprintf(&b, "; interval %s, window %s\n", c.Interval, window)
	fmt.Fprintf(&b, "  measured %s at %g changes/s, seed %d; set-up took %s\n",
		c.Duration, c.ChangeRate, c.Seed, r.SetupTime.Round(time.Second))
	fmt.Fprintf(&b, "  load average (1 5 15 min): %s before, %s after; %d cores\n\n",
		orDash(r.LoadBefore), orDash(r.LoadAfter), r.Process.Cores)

	row := func(label, all, big, aim string) {
		fmt.Fprintf(&b, "  %-30s %-18s %-12s %s\n", label, all, big, aim)
	}
	fmt.Fprintf(&b, "%-32s %-18s %-12s %s\n", "propagation delay", "all tenants", "big tenant",
		"aim")
	row("p50", ms(r.Delay.P50), ms(r.BigDelay.P50), "")
	row("p99", ms(r.Delay.P99), ms(r.BigDelay.P99),
		"< "+ms(r.Aim.DelayTarget)+"  "+mark(r.Aim.Delay))
	row("max", ms(r.Delay.Max), ms(r.BigDelay.Max), "")
	row("changes / never arrived", fmt.Sprintf("%d / %d", r.Delay.Changes, r.Delay.Lost),
		fmt.Sprintf("%d / %d", r.BigDelay.Changes, r.BigDelay.Lost), "0 lost  "+mark(r.Aim.NoneLost))

	q := r.Requests
	fmt.Fprintf(&b, "\n%-32s %-31s %s\n", "Graph presence requests", "per tenant per interval",
		"ideal")
	if c.Tenants > 0 {
		row(fmt.Sprintf("%d-user tenants", c.Users),
			fmt.Sprintf("%.2f (%.2f to %.2f)", q.Mean, q.Min, q.Max), "",
			fmt.Sprintf("%d  %s", q.Ideal, mark(r.Aim.Requests)))
	}
	if c.BigUsers > 0 {
		row(fmt.Sprintf("%d-user tenant", c.BigUsers), fmt.Sprintf("%.2f", q.Big), "",
			fmt.Sprintf("%d  %s", q.BigIdeal, mark(r.Aim.Requests)))
	}
	row("throttled / failed answers", fmt.Sprintf("%d / %d", q.Throttled, q.Failed), "", "")

	fmt.Fprintf(&b, "\n%-32s %-18s %-12s %s\n", "time between polls", "one small tenant",
		"big tenant", "aim")
	pl := r.Polls
	row("p50", ms(pl.Small.P50), ms(pl.Big.P50), c.Interval.String())
	row("p99", ms(pl.Small.P99), ms(pl.Big.P99), "")
	row("max", ms(pl.Small.Max), ms(pl.Big.Max), "")

	p := r.Pushes
	fmt.Fprintf(&b, "\nOneCloud pushes\n")
	row("applied", fmt.Sprint(p.Applied), "", "")
	row("of an unchanged state", fmt.Sprint(p.Unchanged), "", "0  "+mark(r.Aim.NoUnchanged))
	row("replays / stale", fmt.Sprintf("%d / %d", p.Replayed, p.Stale), "", "")

	h := r.History
	fmt.Fprintf(&b, "\nPresenceSync history events per tenant per hour\n")
	switch {
	case h.Error != "":
		row("not measured", h.Error, "", "")
	default:
		if c.Tenants > 0 {
			row(fmt.Sprintf("%d-user tenants", c.Users), fmt.Sprintf("%.0f (max %.0f)", h.Mean, h.Max),
				"", "")
		}
		if c.BigUsers > 0 {
			row(fmt.Sprintf("%d-user tenant", c.BigUsers), fmt.Sprintf("%.0f", h.Big), "", "")
		}
		row("windows started in the period", fmt.Sprint(h.Windows), "", "")
		if h.Windows > 0 {
			row("events per window", fmt.Sprintf("%.1f", h.PerWindow), "", "")
		} else {
			row("", "no window ended: run longer than the window, or shorten --window", "", "")
		}
	}

	pr := r.Process
	fmt.Fprintf(&b, "\nWhole process: worker, both simulators, Temporal server, benchmark\n")
	row("CPU, share of one core", fmt.Sprintf("%.2f", pr.CPU), "", "")
	row("heap in use / RSS / peak RSS",
		fmt.Sprintf("%.0f / %.0f / %.0f MiB", pr.HeapInUseMiB, pr.RSSMiB, pr.PeakRSSMiB), "", "")
	row("goroutines", fmt.Sprint(pr.Goroutines), "", "")

	verdict := "every aim met"
	if !r.Aim.Met() {
		verdict = "some aims missed (marked MISSED above)"
	}
	fmt.Fprintf(&b, "\n%s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func mark(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
