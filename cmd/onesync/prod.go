package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/setera/onesync/api"
	"github.com/setera/onesync/worker"
)

// runWorker runs OneSync's workflows and activities against a Temporal
// cluster until ctx is cancelled. Any number of replicas may run.
func runWorker(ctx context.Context, env *runEnv, args []string) error {
	var cfg workerConfig
	f, logger, err := setUp(env, "worker",
		"Runs OneSync's Temporal workflows and activities against a Temporal\n"+
			"cluster, on task queue onesync. Run as many replicas as the load needs.", &cfg, args)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	f.log(logger)

	a, err := buildApp(ctx, cfg.Store, &cfg, logger)
	if err != nil {
		return err
	}
	defer closeApp(a, logger)

	cc := cfg.Temporal.client()
	cc.Logger = logger
	cc.MetricsHandler = worker.PrometheusMetrics(a.Metrics)
	c, err := worker.Dial(ctx, cc)
	if err != nil {
		return err
	}
	defer c.Close()

	if cfg.MetricsAddr != "" {
		l, err := listen("--metrics-addr", cfg.MetricsAddr)
		if err != nil {
			return err
		}
		m := serveHTTP(l, a.metricsHandler(), logger)
		defer func() { _ = m.Shutdown(5 * time.Second) }()
	}

	fatal := make(chan error, 1)
	w := worker.New(c, worker.Options{
		Logger:       logger,
		Activities:   a.Activities,
		StopTimeout:  cfg.ShutdownTimeout,
		SyncInterval: cfg.Sync.Interval,
		SyncWindow:   cfg.Sync.Window,
		OnFatalError: func(err error) { fatal <- err },
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker running", zap.String("temporal", cfg.Temporal.Address),
		zap.String("namespace", cfg.Temporal.Namespace))

	select {
	case <-ctx.Done():
		logger.Info("stopping: finishing running activities",
			zap.Duration("timeout", cfg.ShutdownTimeout))
		w.Stop()
		a.releaseSIP(logger)
		logger.Info("stopped")
		return nil
	case err := <-fatal:
		return fmt.Errorf("worker stopped: %w", err)
	}
}

// runAPI serves the portal, the staff pages and the JSON API against a
// Temporal cluster until ctx is cancelled. Any number of replicas may run
// behind a load balancer.
func runAPI(ctx context.Context, env *runEnv, args []string) error {
	var cfg apiConfig
	f, logger, err := setUp(env, "api",
		"Serves the portal, the staff pages, the consent callback and the JSON\n"+
			"API against a Temporal cluster. Run as many replicas as the load needs.", &cfg, args)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	f.log(logger)

	l, err := listen("--http-addr", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer l.Close()

	cc := cfg.Temporal.client()
	cc.Logger = logger
	c, err := worker.Dial(ctx, cc)
	if err != nil {
		return err
	}
	defer c.Close()

	a, err := buildApp(ctx, cfg.Store, nil, logger)
	if err != nil {
		return err
	}
	defer closeApp(a, logger)

	h, err := api.NewServer(api.Deps{
		Logger:           logger,
		Temporal:         c,
		Store:            a.Store,
		PublicURL:        cfg.PublicURL,
		TemporalUIURL:    cfg.TemporalUIURL,
		Namespace:        cfg.Temporal.Namespace,
		SecureCookies:    cfg.SecureCookies,
		TrustedProxies:   cfg.trustedProxies(),
		ConsentAuthority: cfg.Graph.Authority,
		ClientID:         cfg.Graph.ClientID,
		DirectorySource:  cfg.Directory,
		Metrics:          a.metricsHandler(),
	})
	if err != nil {
		return configErrorf("%w", err)
	}

	srv := serveHTTP(l, h, logger)
	logger.Info("serving HTTP", zap.String("addr", srv.Addr()))

	select {
	case <-ctx.Done():
		logger.Info("stopping: draining HTTP requests", zap.Duration("timeout", cfg.ShutdownTimeout))
		if err := srv.Shutdown(cfg.ShutdownTimeout); err != nil {
			return err
		}
		logger.Info("stopped")
		return nil
	case <-srv.Done():
		return fmt.Errorf("HTTP server stopped: %w", srv.Err())
	}
}

func closeApp(a *app, logger *zap.Logger) {
	if err := a.Close(); err != nil {
		logger.Error("close app", zap.Error(err))
	}
}
