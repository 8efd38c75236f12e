package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/setera/onesync/activities"
	"github.com/setera/onesync/devstack"
	graphclient "github.com/setera/onesync/graph/client"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/sip"
	"github.com/setera/onesync/store"
)

// app is what `worker` and `api` run besides Temporal and the HTTP
// server: the store and, for the worker, the Graph client, the PBX
// connector and the activities built on them. (`onesync dev` builds the
// same from package devstack, pointed at the simulators.)
type app struct {
	Store      *store.DB
	Activities *activities.Activities
	Metrics    *prometheus.Registry

	sip     *sip.Publisher
	closers []func() error
}

// buildApp opens the store; with a worker configuration it also builds the
// activities. On error whatever was built is closed.
func buildApp(ctx context.Context, dsn string, wc *workerConfig, logger *zap.Logger) (*app, error) {
	a := &app{Metrics: prometheus.NewRegistry()}
	a.Metrics.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactDSN(dsn), err)
	}
	a.Store = db
	a.closers = append(a.closers, db.Close)

	if wc != nil {
		if err := a.buildActivities(wc, logger); err != nil {
			_ = a.Close()
			return nil, err
		}
	}
	return a, nil
}

func (a *app) buildActivities(wc *workerConfig, logger *zap.Logger) error {
	gcfg := wc.Graph.config()
	gcfg.Logger = logger.Named("graph")
	gc, err := graphclient.New(gcfg)
	if err != nil {
		return configErrorf("Graph client: %w", err)
	}
	metrics, err := activities.NewMetrics(a.Metrics)
	if err != nil {
		return err
	}

	var conn pbx.Connector
	var dir pbx.Directory
	switch wc.PBX.Connector {
	case devstack.ConnectorSIP:
		sc := wc.PBX.SIP.config()
		sc.Logger = logger.Named("sip")
		pub, err := sip.New(sc)
		if err != nil {
			return configErrorf("SIP connector: %w", err)
		}
		a.sip = pub
		dir = a.Store.Directory()
		conn = pbx.Combine(dir, pub)
	default:
		rc := wc.PBX.rest()
		rc.Logger = logger.Named("pbx")
		rest, err := pbx.NewREST(rc)
		if err != nil {
			return configErrorf("OneCloud connector: %w", err)
		}
		conn = rest
	}

	a.Activities = &activities.Activities{
		Store: a.Store, Graph: gc, PBX: conn, Directory: dir,
		Logger: logger, Metrics: metrics,
	}
	return nil
}

// releaseSIP clears every line the SIP publisher made busy, for a clean
// shutdown of a worker: nobody's lamp stays red while no worker runs.
func (a *app) releaseSIP(logger *zap.Logger) {
	if a.sip == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.sip.ClearAll(ctx); err != nil {
		logger.Warn("clear SIP lines at shutdown", zap.Error(err))
	}
	_ = a.sip.Close()
}

// metricsHandler serves the app's Prometheus registry.
func (a *app) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{})
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
