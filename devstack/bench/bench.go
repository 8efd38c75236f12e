// Package bench measures OneSync's presence sync under load on one
// machine: it runs the whole stack in-process (package devstack) with
// Temporal in memory, connects many tenants of the Graph simulator to
// organisations of the OneCloud simulator, changes presences at a steady
// rate and reports how long each change took to reach OneCloud, how many
// Graph requests each tenant cost, how many pushes were useless, how fast
// the workflows' histories grow, and what the process spent in CPU and
// memory. `onesync bench` and BenchmarkSyncTenants run it.
//
// It is a measurement, never a pass or fail on time: the figures depend on
// the machine and its load, which the report records beside them. It
// sends traffic only to the loopback servers it starts, and every loop in
// it is bounded by Config.Duration or a fixed deadline.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/presence"
)

// Defaults of Config, the size the product aims at: 200 tenants of 50
// users and one of 5,000, polled every 2 s.
const (
	DefaultTenants    = 200
	DefaultUsers      = 50
	DefaultBigUsers   = 5000
	DefaultDuration   = 2 * time.Minute
	DefaultInterval   = 2 * time.Second
	DefaultChangeRate = 20
)

// Bounds of Config: enough for the product's aim with room above it, and
// small enough that a typo cannot make the machine unusable for hours.
const (
	MaxTenants    = 1000
	MaxUsers      = 1000
	MaxBigUsers   = 20000
	MaxDuration   = 30 * time.Minute
	MaxChangeRate = 1000
	MinInterval   = time.Second
	MaxInterval   = time.Minute
	MaxWindow     = time.Hour
	minWindow     = 10 * time.Second
)

// Config sizes one benchmark run.
type Config struct {
	// Tenants is the number of ordinary tenants of Users users each. One
	// more tenant of BigUsers users is added unless BigUsers is 0.
	Tenants  int
	Users    int
	BigUsers int

	// Duration is the measured period during which presences change.
	Duration time.Duration
	// Interval is the polling interval of every tenant's sync.
	Interval time.Duration
	// Window is the length of one SyncPresence window; 0 keeps the
	// product's default (5 minutes).
	Window time.Duration
	// ChangeRate is how many presence changes per second the benchmark
	// makes, over all users of all tenants.
	ChangeRate float64
	// Seed makes the tenants and the sequence of changes repeatable.
	Seed int64

	// CPUProfile, when set, is a file that receives a CPU profile of the
	// measured period, for `go tool pprof`.
	CPUProfile string
	// Logger receives the stack's logs; nil discards them.
	Logger *zap.Logger
	// Progress receives a line per setup step for a person watching; nil
	// discards them.
	Progress io.Writer
}

// DefaultConfig is the full-size run.
func DefaultConfig() Config {
	return Config{
		Tenants: DefaultTenants, Users: DefaultUsers, BigUsers: DefaultBigUsers,
		Duration: DefaultDuration, Interval: DefaultInterval,
		ChangeRate: DefaultChangeRate, Seed: 1,
	}
}

// dwell is how long a user keeps a presence before the benchmark changes
// it again: longer than a poll, so that every change is one the polling
// can see. A change shorter than the interval may rightly never reach
// OneCloud, and would be counted as lost.
func (c Config) dwell() time.Duration { return 3 * c.Interval }

// totalUsers is the number of users over all tenants.
func (c Config) totalUsers() int { return c.Tenants*c.Users + c.BigUsers }

// Validate refuses sizes outside the bounds above, with the reason.
func (c Config) Validate() error {
	switch {
	case c.Tenants < 0 || c.Tenants > MaxTenants:
		return fmt.Errorf("tenants %d: want 0 to %d", c.Tenants, MaxTenants)
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("users %d: want 1 to %d per tenant", c.Users, MaxUsers)
	case c.BigUsers < 0 || c.BigUsers > MaxBigUsers:
		return fmt.Errorf("big-users %d: want 0 (no big tenant) to %d", c.BigUsers, MaxBigUsers)
	case c.Tenants == 0 && c.BigUsers == 0:
		return errors.New("no tenant to sync: tenants and big-users are both 0")
	case c.Duration < time.Second || c.Duration > MaxDuration:
		return fmt.Errorf("duration %s: want 1s to %s", c.Duration, MaxDuration)
	case c.Interval < MinInterval || c.Interval > MaxInterval:
		return fmt.Errorf("interval %s: want %s to %s", c.Interval, MinInterval, MaxInterval)
	case c.Duration < 2*c.Interval:
		return fmt.Errorf("duration %s must cover at least two intervals of %s",
			c.Duration, c.Interval)
	case c.Window != 0 && (c.Window < minWindow || c.Window > MaxWindow):
		return fmt.Errorf("window %s: want 0 (the product's default) or %s to %s",
			c.Window, minWindow, MaxWindow)
	case c.ChangeRate <= 0 || c.ChangeRate > MaxChangeRate:
		return fmt.Errorf("change-rate %g: want more than 0 and at most %d per second",
			c.ChangeRate, MaxChangeRate)
	}
	// Users changed within the dwell are not picked again; keep most
	// users free so that picking stays uniform.
	if busy := c.ChangeRate * c.dwell().Seconds(); busy > float64(c.totalUsers())/4 {
		return fmt.Errorf("change-rate %g per second is too high for %d users: at most %d",
			c.ChangeRate, c.totalUsers(),
			int(float64(c.totalUsers())/4/c.dwell().Seconds()))
	}
	return nil
}

// Run starts a stack in a temporary folder (removed at the end), connects
// the tenants, waits until every extension shows its first state, changes
// presences for Duration and returns the figures. ctx cancels the run.
func Run(ctx context.Context, c Config) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	// Stopping the stack cancels every polling window at once, which the
	// SDK logs as warnings and errors; once the figures are taken they are
	// noise, so the stack's logger goes quiet before it stops.
	var quiet atomic.Bool
	c.Logger = c.Logger.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return gatedCore{Core: core, off: &quiet}
	}))
	if c.Progress == nil {
		c.Progress = io.Discard
	}

	dir, err := os.MkdirTemp("", "onesync-bench-")
	if err != nil {
		return Report{}, fmt.Errorf("make data folder: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	started := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{
		DataDir:          dir,
		InMemoryTemporal: true,
		DisableUI:        true,
		HTTPAddr:         "127.0.0.1:0",
		GraphAddr:        "127.0.0.1:0",
		OneCloudAddr:     "127.0.0.1:0",
		SyncInterval:     c.Interval,
		SyncWindow:       c.Window,
		Logger:           c.Logger,
	})
	if err != nil {
		return Report{}, fmt.Errorf("start the stack: %w", err)
	}
	defer func() {
		quiet.Store(true)
		_ = s.Stop()
	}()
	progress(c.Progress, "stack started in %s", time.Since(started).Round(time.Millisecond))

	r := &runner{cfg: c, s: s, rng: rand.New(rand.NewPCG(uint64(c.Seed), 0x6265))}
	if err := r.setUp(ctx); err != nil {
		return Report{}, err
	}
	progress(c.Progress, "%d tenants and %d users synced in %s", len(r.tenants),
		len(r.users), time.Since(started).Round(time.Second))

	rep, err := r.measure(ctx)
	if err != nil {
		return Report{}, err
	}
	rep.SetupTime = r.setupTime.Round(time.Millisecond)
	return rep, nil
}

// runner is one benchmark run.
type runner struct {
	cfg       Config
	s         *devstack.Stack
	rng       *rand.Rand
	tenants   []*benchTenant
	users     []*benchUser // every user of every tenant
	setupTime time.Duration
}

// benchTenant is one connected tenant.
type benchTenant struct {
	id     string // Graph tenant id
	orgID  string // OneSync organisation id
	pbxOrg string // OneCloud organisation id
	users  int
	big    bool
}

// benchUser is one user and the extension it is linked to.
type benchUser struct {
	tenant    *benchTenant
	id        string
	ext       string
	inCall    bool
	changedAt time.Time
}

// Presences the benchmark toggles between.
var (
	inCall = struct{ availability, activity string }{"Busy", "InACall"}
	free   = struct{ availability, activity string }{"Available", "Available"}
)

// Line states the default profile maps the two presences to.
const (
	inCallState = presence.Busy
	freeState   = presence.Available
)

// measure runs the changes for Duration and gathers the figures.
func (r *runner) measure(ctx context.Context) (Report, error) {
	c := r.cfg
	rep := Report{Config: reportConfig(c), LoadBefore: loadAverage()}

	// The histories are read outside the timed period: describing every
	// workflow takes seconds on a loaded machine.
	hBefore, err := r.histories(ctx)
	if err != nil {
		return rep, err
	}
	before, err := r.counters()
	if err != nil {
		return rep, err
	}
	stopProfile, err := startProfile(c.CPUProfile)
	if err != nil {
		return rep, err
	}
	stopWatch := r.watchPolls(ctx)
	changes, err := r.change(ctx)
	stopProfile()
	gaps := stopWatch()
	if err != nil {
		return rep, err
	}
	after, err := r.counters()
	if err != nil {
		return rep, err
	}
	rep.LoadAfter = loadAverage()
	rep.Process = processFigures(before.proc, after.proc)

	// The last changes get time to arrive; receipts after the measured
	// period count only as arrivals of changes made in it.
	drain := c.Interval*3 + 5*time.Second
	progress(c.Progress, "changes done; waiting %s for the last ones to arrive", drain)
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(drain):
	}
	hAfter, err := r.histories(ctx)
	if err != nil {
		return rep, err
	}

	receipts := r.s.OneCloud.Received()
	rep.Delay, rep.BigDelay = delays(changes, receipts)
	rep.Pushes = pushFigures(receipts, before.at)
	rep.Requests = r.requestFigures(before, after)
	rep.Polls = gaps
	rep.History = r.historyFigures(ctx, hBefore, hAfter)
	rep.Aim = aim(c, rep)
	return rep, nil
}

// change makes presence changes at ChangeRate for Duration and returns
// them in the order made.
func (r *runner) change(ctx context.Context) ([]Change, error) {
	c := r.cfg
	progress(c.Progress, "changing presences at %g per second for %s", c.ChangeRate, c.Duration)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()

	start := time.Now()
	end := start.Add(c.Duration)
	out := make([]Change, 0, int(c.ChangeRate*c.Duration.Seconds())+1)
	for done := 0; ; {
		now := time.Now()
		if !now.Before(end) {
			return out, nil
		}
		due := int(c.ChangeRate * now.Sub(start).Seconds())
		for ; done < due; done++ {
			ch, ok, err := r.changeOne(now)
			if err != nil {
				return out, err
			}
			if ok {
				out = append(out, ch)
			}
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
	}
}

// changeOne starts or ends the call of a random user that has kept its
// presence for the dwell. It reports false when a few picks found only
// users changed too recently, which Validate makes rare.
func (r *runner) changeOne(now time.Time) (Change, bool, error) {
	for range 8 {
		u := r.users[r.rng.IntN(len(r.users))]
		if now.Sub(u.changedAt) < r.cfg.dwell() {
			continue
		}
		p, state := inCall, inCallState
		if u.inCall {
			p, state = free, freeState
		}
		at, err := r.s.Graph.SetPresence(u.tenant.id, u.id, p.availability, p.activity)
		if err != nil {
			return Change{}, false, fmt.Errorf("change presence of %s: %w", u.id, err)
		}
		u.inCall = !u.inCall
		u.changedAt = at
		return Change{Org: u.tenant.pbxOrg, Extension: u.ext, State: state, At: at,
			Big: u.tenant.big}, true, nil
	}
	return Change{}, false, nil
}

// startProfile starts a CPU profile into path, if set, and returns what
// stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// gatedCore is a zap core that drops every entry once off is set.
type gatedCore struct {
	zapcore.Core
	off *atomic.Bool
}

func (g gatedCore) Enabled(l zapcore.Level) bool { return !g.off.Load() && g.Core.Enabled(l) }

func (g gatedCore) With(fields []zapcore.Field) zapcore.Core {
	return gatedCore{Core: g.Core.With(fields), off: g.off}
}

func (g gatedCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if g.off.Load() {
		return ce
	}
	return g.Core.Check(e, ce)
}
