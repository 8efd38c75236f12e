package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/setera/onesync/activities"
	"github.com/setera/onesync/store"
)

// appConfig is what building the app needs from a subcommand's
// configuration.
type appConfig struct {
	// StoreDSN names OneSync's database (see store.Open).
	StoreDSN string
	// Dev is set by `onesync dev`: the app then also runs the simulators
	// and points the Graph client and the PBX connector at them.
	Dev bool
	// WithActivities builds the activities; only the processes that run a
	// worker need them.
	WithActivities bool
}

// app is everything a OneSync process runs besides Temporal, the worker
// and the HTTP server: the store, the clients of the outside services,
// the activities and, in `onesync dev`, the simulators. Each subcommand
// builds it with buildApp and closes it last.
type app struct {
	Store *store.DB

	// Activities is given to worker.New. It stays nil until the Graph
	// client and the PBX connector are attached below; the worker then
	// registers the workflows only.
	Activities *activities.Activities

	// Endpoints are extra lines for the block `onesync dev` prints, such
	// as the simulators' addresses.
	Endpoints []endpoint

	closers []func() error
}

// endpoint is one line of the block `onesync dev` prints.
type endpoint struct {
	Name string
	URL  string
}

// buildApp builds the app for cfg. On error whatever was built is closed.
func buildApp(ctx context.Context, cfg appConfig, logger *zap.Logger) (*app, error) {
	a := &app{}

	db, err := store.Open(ctx, cfg.StoreDSN)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactDSN(cfg.StoreDSN), err)
	}
	a.Store = db
	a.closers = append(a.closers, db.Close)

	// Placeholder, simulators: in `onesync dev` (cfg.Dev) the Graph and
	// Entra simulator (devstack/graphsim, 127.0.0.1:8081) and the OneCloud
	// simulator (devstack/onecloudsim, 127.0.0.1:8082) are started here,
	// their Close appended to a.closers and their addresses to a.Endpoints.

	// Placeholder, Graph client and PBX connector: built here from the
	// configuration (in dev, pointed at the simulators above).

	// Placeholder, activities: once the Graph client and the PBX connector
	// exist, cfg.WithActivities builds
	//	a.Activities = &activities.Activities{Store: db, Graph: ..., PBX: ...,
	//		Logger: logger}
	_ = cfg.WithActivities

	logger.Debug("app built", zap.Bool("dev", cfg.Dev),
		zap.Bool("activities", a.Activities != nil))
	return a, nil
}

// Close closes what buildApp opened, last opened first.
func (a *app) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}
