package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/setera/onesync/devstack/bench"
	"github.com/setera/onesync/logging"
)

// benchConfig configures `onesync bench`.
type benchConfig struct {
	Tenants    int
	Users      int
	BigUsers   int
	Duration   time.Duration
	Interval   time.Duration
	Window     time.Duration
	ChangeRate float64
	Seed       int64
	JSON       bool
	CPUProfile string
	Log        logConfig
}

func (c *benchConfig) register(f *flags) {
	d := bench.DefaultConfig()
	f.fs.IntVar(&c.Tenants, "tenants", d.Tenants, "number of ordinary tenants")
	f.fs.IntVar(&c.Users, "users", d.Users, "users in each ordinary tenant")
	f.fs.IntVar(&c.BigUsers, "big-users", d.BigUsers,
		"users in the one big tenant; 0 leaves it out")
	f.fs.DurationVar(&c.Duration, "duration", d.Duration,
		"measured period during which presences change")
	f.fs.DurationVar(&c.Interval, "interval", d.Interval, "polling interval of every tenant")
	f.fs.DurationVar(&c.Window, "window", 0,
		"length of one polling window; 0 keeps the product's default")
	f.fs.Float64Var(&c.ChangeRate, "change-rate", d.ChangeRate,
		"presence changes per second over all users")
	f.fs.Int64Var(&c.Seed, "seed", d.Seed, "seed of the tenants and of the changes")
	f.fs.BoolVar(&c.JSON, "json", false, "print the figures as JSON instead of a table")
	f.fs.StringVar(&c.CPUProfile, "cpuprofile", "",
		"write a CPU profile of the measured period to this file, for go tool pprof")
	c.Log.register(f, logging.ModeConsole)
	c.Log.Level = "warn"
	f.fs.Lookup("log-level").DefValue = "warn"
}

func (c *benchConfig) validate() error {
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := c.bench().Validate(); err != nil {
		return configErrorf("%w", err)
	}
	return nil
}

func (c *benchConfig) logSettings() logConfig { return c.Log }

func (c *benchConfig) bench() bench.Config {
	return bench.Config{
		Tenants: c.Tenants, Users: c.Users, BigUsers: c.BigUsers,
		Duration: c.Duration, Interval: c.Interval, Window: c.Window,
		ChangeRate: c.ChangeRate, Seed: c.Seed, CPUProfile: c.CPUProfile,
	}
}

// runBench runs the load benchmark in this process (package
// devstack/bench) and prints its figures on standard output; progress
// goes to standard error.
func runBench(ctx context.Context, env *runEnv, args []string) error {
	var cfg benchConfig
	f, logger, err := setUp(env, "bench",
		"Runs the whole stack in this process on free loopback ports, connects many\n"+
			"tenants of the Graph simulator to the OneCloud simulator, changes presences at\n"+
			"a steady rate and prints the propagation delay, Graph requests, useless pushes,\n"+
			"history growth and the process's CPU and memory. It takes set-up time plus\n"+
			"--duration; nothing is kept afterwards.", &cfg, args)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	f.log(logger)

	bc := cfg.bench()
	bc.Logger = logger
	bc.Progress = env.stderr
	rep, err := bench.Run(ctx, bc)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintln(env.stderr, "onesync bench: interrupted; no figures")
			return nil
		}
		return err
	}

	if cfg.JSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("print figures: %w", err)
		}
		return nil
	}
	if err := rep.WriteTable(env.stdout); err != nil {
		return fmt.Errorf("print figures: %w", err)
	}
	return nil
}
