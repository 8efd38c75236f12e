package bench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/workflows"
)

// counters are the request counts and the process's resource use at one
// moment, read together so that they bound the same period.
type counters struct {
	at       time.Time
	requests map[string]graphsim.RequestCounts // by tenant id
	proc     procSample
}

func (r *runner) counters() (counters, error) {
	cs := counters{at: time.Now(), requests: make(map[string]graphsim.RequestCounts, len(r.tenants))}
	for _, t := range r.tenants {
		rc, err := r.s.Graph.RequestCounts(t.id)
		if err != nil {
			return cs, fmt.Errorf("request counts of %s: %w", t.id, err)
		}
		cs.requests[t.id] = rc
	}
	cs.proc = sampleProcess()
	return cs, nil
}

// histories is the history length of every tenant's PresenceSync run; at
// is the middle of the time the reads took.
type histories struct {
	at   time.Time
	runs map[string]runLength // by tenant id
}

// runLength is the history length of a workflow's current run.
type runLength struct {
	runID  string
	events int64
}

func (r *runner) histories(ctx context.Context) (histories, error) {
	start := time.Now()
	h := histories{runs: make(map[string]runLength, len(r.tenants))}
	for _, t := range r.tenants {
		rl, err := r.currentRun(ctx, t.id, "")
		if err != nil {
			return h, err
		}
		h.runs[t.id] = rl
	}
	h.at = start.Add(time.Since(start) / 2)
	return h, nil
}

// currentRun describes a run of the tenant's PresenceSync (the current one
// when runID is empty).
func (r *runner) currentRun(ctx context.Context, tenantID, runID string) (runLength, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := r.s.Client.DescribeWorkflowExecution(ctx, workflows.PresenceSyncID(tenantID), runID)
	if err != nil {
		return runLength{}, fmt.Errorf("describe the presence sync of %s: %w", tenantID, err)
	}
	info := d.GetWorkflowExecutionInfo()
	return runLength{runID: info.GetExecution().GetRunId(), events: info.GetHistoryLength()}, nil
}

// historyGrowth is how many events the tenant's PresenceSync added between
// two snapshots, over every run in between when it continued as new: the
// rest of the first run, every whole run after it, and the current run.
func (r *runner) historyGrowth(ctx context.Context, tenantID string, from, to runLength) (
	int64, error) {
	if from.runID == to.runID {
		return to.events - from.events, nil
	}
	id := workflows.PresenceSyncID(tenantID)
	total := -from.events
	run := from.runID
	for range 1000 {
		rl, err := r.currentRun(ctx, tenantID, run)
		if err != nil {
			return 0, err
		}
		if run == to.runID {
			return total + to.events, nil
		}
		total += rl.events

		it := r.s.Client.GetWorkflowHistory(ctx, id, run, false,
			enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
		next := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return 0, fmt.Errorf("close event of %s run %s: %w", id, run, err)
			}
			next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
		if next == "" {
			return 0, fmt.Errorf("run %s of %s ended without continuing as new", run, id)
		}
		run = next
	}
	return 0, fmt.Errorf("more than 1000 runs of %s in the measured period", id)
}

// Requests are the Graph presence requests per tenant per polling
// interval over the measured period, next to the fewest possible.
type Requests struct {
	// Mean, Min and Max are over the ordinary tenants.
	Mean  float64 `json:"mean"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Ideal int     `json:"ideal"`
	// Big and BigIdeal are the big tenant's.
	Big      float64 `json:"big"`
	BigIdeal int     `json:"bigIdeal"`
	// Throttled and Failed count 429 and failed answers over all tenants.
	Throttled int `json:"throttled"`
	Failed    int `json:"failed"`
}

func (r *runner) requestFigures(before, after counters) Requests {
	intervals := after.at.Sub(before.at).Seconds() / r.cfg.Interval.Seconds()
	q := Requests{Min: math.Inf(1), Ideal: idealRequests(r.cfg.Users),
		BigIdeal: idealRequests(r.cfg.BigUsers)}
	n := 0
	for _, t := range r.tenants {
		a, b := after.requests[t.id], before.requests[t.id]
		per := float64(a.Presences-b.Presences) / intervals
		q.Throttled += a.Throttled - b.Throttled
		q.Failed += a.Failed - b.Failed
		if t.big {
			q.Big = per
			continue
		}
		n++
		q.Mean += per
		q.Min = math.Min(q.Min, per)
		q.Max = math.Max(q.Max, per)
	}
	if n == 0 {
		q.Min = 0
		return q
	}
	q.Mean /= float64(n)
	return q
}

// History is the growth of the PresenceSync histories, in events per
// tenant per hour of sync, scaled from the measured period (and the wait
// after it). Windows end at different times in different tenants, so over
// many tenants a short period still gives a fair mean, but only if some
// windows ended in it: Windows counts the SyncPresence windows scheduled
// in the period, and PerWindow is the events added per such window.
type History struct {
	Mean      float64 `json:"mean"`
	Max       float64 `json:"max"`
	Big       float64 `json:"big"`
	Windows   int     `json:"windows"`
	PerWindow float64 `json:"perWindow"`
	// Error says why the figures are missing, if they are.
	Error string `json:"error,omitempty"`
}

func (r *runner) historyFigures(ctx context.Context, before, after histories) History {
	hours := after.at.Sub(before.at).Hours()
	var h History
	n := 0
	var total int64
	for _, t := range r.tenants {
		grown, err := r.historyGrowth(ctx, t.id, before.runs[t.id], after.runs[t.id])
		if err != nil {
			h.Error = err.Error()
			return h
		}
		windows, err := r.windowsScheduled(ctx, t.id, before.at, after.at)
		if err != nil {
			h.Error = err.Error()
			return h
		}
		h.Windows += windows
		total += grown
		perHour := float64(grown) / hours
		if t.big {
			h.Big = perHour
			continue
		}
		n++
		h.Mean += perHour
		h.Max = math.Max(h.Max, perHour)
	}
	if n > 0 {
		h.Mean /= float64(n)
	}
	if h.Windows > 0 {
		h.PerWindow = float64(total) / float64(h.Windows)
	}
	return h
}

// windowsScheduled counts the SyncPresence activities the tenant's current
// PresenceSync run scheduled between from and to.
func (r *runner) windowsScheduled(ctx context.Context, tenantID string, from, to time.Time) (
	int, error) {
	id := workflows.PresenceSyncID(tenantID)
	it := r.s.Client.GetWorkflowHistory(ctx, id, "", false,
		enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, fmt.Errorf("history of %s: %w", id, err)
		}
		at := ev.GetEventTime().AsTime()
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a != nil && a.GetActivityType().GetName() == workflows.ActivitySyncPresence &&
			!at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n, nil
}

// procSample is the process's resource use at one moment.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system time since the process started
	heap    uint64        // bytes of heap in use
	rss     uint64        // resident set, bytes
	peakRSS uint64        // highest resident set so far, bytes
	gor     int
}

func sampleProcess() procSample {
	p := procSample{at: time.Now(), gor: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		p.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.heap = ms.HeapInuse
	p.rss, p.peakRSS = procStatus()
	return p
}

// procStatus reads VmRSS and VmHWM from /proc/self/status; zeros where
// the file is missing (not Linux).
func procStatus() (rss, peak uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value) // "123456 kB"
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			rss = kb * 1024
		} else {
			peak = kb * 1024
		}
	}
	return rss, peak
}

// Process is what the whole benchmark process used: the worker, the
// simulators, the embedded Temporal server and the benchmark itself all
// run in it, so the worker alone uses less.
type Process struct {
	// CPU is user plus system time over the measured period as a share of
	// one core: 1.0 is one core fully busy.
	CPU          float64 `json:"cpu"`
	HeapInUseMiB float64 `json:"heapInUseMiB"`
	RSSMiB       float64 `json:"rssMiB"`
	PeakRSSMiB   float64 `json:"peakRssMiB"`
	Goroutines   int     `json:"goroutines"`
	Cores        int     `json:"cores"`
}

func processFigures(before, after procSample) Process {
	const mib = 1 << 20
	wall := after.at.Sub(before.at)
	p := Process{
		HeapInUseMiB: float64(after.heap) / mib,
		RSSMiB:       float64(after.rss) / mib,
		PeakRSSMiB:   float64(after.peakRSS) / mib,
		Goroutines:   after.gor,
		Cores:        runtime.NumCPU(),
	}
	if wall > 0 {
		p.CPU = float64(after.cpu-before.cpu) / float64(wall)
	}
	return p
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, as
// uptime shows them, or "" where /proc/loadavg is missing.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
