package bench

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
)

// Change is one presence change the benchmark made in the Graph
// simulator: the extension it should reach, the line state it should
// show there, and when the simulator made the change.
type Change struct {
	Org       string
	Extension string
	State     presence.LineState
	At        time.Time
	Big       bool // the change is in the big tenant
}

// Delays summarises the propagation delays of a set of changes: how many
// were made, how many never arrived, and the percentiles of those that did.
type Delays struct {
	Changes int           `json:"changes"`
	Lost    int           `json:"lost"`
	P50     time.Duration `json:"p50"`
	P99     time.Duration `json:"p99"`
	Max     time.Duration `json:"max"`
}

// extKey names one extension across organisations.
type extKey struct{ org, ext string }

// delays matches every change to the first applied receipt of its
// extension, at or after the change, that carries the change's new state,
// and summarises the delays over all changes and over the big tenant's.
func delays(changes []Change, receipts []onecloudsim.Receipt) (all, big Delays) {
	applied := map[extKey][]onecloudsim.Receipt{}
	for _, rc := range receipts {
		if rc.Outcome == onecloudsim.OutcomeApplied {
			k := extKey{rc.Org, rc.Extension}
			applied[k] = append(applied[k], rc)
		}
	}
	for _, list := range applied {
		sort.SliceStable(list, func(i, j int) bool {
			return list[i].ReceivedAt.Before(list[j].ReceivedAt)
		})
	}

	var dAll, dBig []time.Duration
	for _, ch := range changes {
		all.Changes++
		if ch.Big {
			big.Changes++
		}
		d, ok := arrival(ch, applied[extKey{ch.Org, ch.Extension}])
		switch {
		case !ok && ch.Big:
			big.Lost++
			all.Lost++
		case !ok:
			all.Lost++
		case ch.Big:
			dBig = append(dBig, d)
			dAll = append(dAll, d)
		default:
			dAll = append(dAll, d)
		}
	}
	summarise(&all, dAll)
	summarise(&big, dBig)
	return all, big
}

// arrival is the delay from ch to the first receipt in list (sorted by
// time) received at or after it with ch's state.
func arrival(ch Change, list []onecloudsim.Receipt) (time.Duration, bool) {
	i := sort.Search(len(list), func(i int) bool { return !list[i].ReceivedAt.Before(ch.At) })
	for ; i < len(list); i++ {
		if list[i].State == ch.State {
			return list[i].ReceivedAt.Sub(ch.At), true
		}
	}
	return 0, false
}

// summarise sorts ds and puts its percentiles into d.
func summarise(d *Delays, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	d.P50, d.P99, d.Max = percentile(ds, 50), percentile(ds, 99), ds[len(ds)-1]
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted
// values: the smallest value that at least p % of the values do not
// exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Pushes counts the line-state requests OneCloud received from the start
// of the measured period on, including the wait for the last changes.
type Pushes struct {
	Applied int `json:"applied"`
	// Unchanged counts applied pushes whose state equals the state the
	// extension already held: work that changed no lamp.
	Unchanged int `json:"unchanged"`
	Replayed  int `json:"replayed"`
	Stale     int `json:"stale"`
}

// pushFigures walks the whole receipt log, to know each extension's state
// before the measured period, and counts the receipts from from on.
func pushFigures(receipts []onecloudsim.Receipt, from time.Time) Pushes {
	var p Pushes
	held := map[extKey]presence.LineState{}
	for _, rc := range receipts {
		k := extKey{rc.Org, rc.Extension}
		counted := !rc.ReceivedAt.Before(from)
		switch rc.Outcome {
		case onecloudsim.OutcomeApplied:
			prev, ok := held[k]
			held[k] = rc.State
			if counted {
				p.Applied++
				if ok && prev == rc.State {
					p.Unchanged++
				}
			}
		case onecloudsim.OutcomeReplayed:
			if counted {
				p.Replayed++
			}
		case onecloudsim.OutcomeStale:
			if counted {
				p.Stale++
			}
		}
	}
	return p
}

// idealRequests is the fewest presence requests that read users users
// once: one per graph.MaxPresenceIDs ids.
func idealRequests(users int) int {
	return (users + graph.MaxPresenceIDs - 1) / graph.MaxPresenceIDs
}
