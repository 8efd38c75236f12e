package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/setera/onesync/api"
	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/logging"
	"github.com/setera/onesync/worker"
)

// storeFile is OneSync's own SQLite database in the dev data folder,
// beside the Temporal server's temporaldev.DatabaseFile.
const storeFile = "onesync.db"

// runDev runs everything on this machine until ctx is cancelled: the
// embedded Temporal server and UI, the worker, and the HTTP server.
func runDev(ctx context.Context, env *runEnv, args []string) error {
	var cfg devConfig
	f := newFlags("dev", "Runs Temporal with its UI, the worker and the portal on this machine,\n"+
		"keeping state in the data folder across restarts.", env.stderr)
	cfg.register(f)
	if err := f.parse(args, env.getenv); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}

	logger, err := logging.New(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return configErrorf("%w", err)
	}
	defer func() { _ = logger.Sync() }()
	f.log(logger)

	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return configErrorf("--data-dir %q: %w", cfg.DataDir, err)
	}

	// The HTTP port is bound first: it is the one a person is most likely
	// to have in use already, and binding it costs nothing to undo.
	httpL, err := listen("--http-addr", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer httpL.Close()

	d := &devRun{cfg: cfg, dataDir: dataDir, logger: logger}
	defer d.stop()
	if err := d.start(ctx, httpL); err != nil {
		if ctx.Err() != nil {
			// Ctrl-C during the start: what started is stopped by the
			// deferred stop, and that is a clean stop, not a failure.
			logger.Info("stopped before the start was complete")
			return nil
		}
		return err
	}

	printDevBlock(env.stdout, d)
	logger.Info("onesync dev is running; Ctrl-C stops it")

	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case <-d.http.Done():
		if err := d.http.Err(); err != nil {
			return fmt.Errorf("HTTP server stopped: %w", err)
		}
	case err := <-d.workerErr:
		return fmt.Errorf("worker stopped: %w", err)
	}
	return d.stop()
}

// devRun holds what `onesync dev` started, so that stop can undo it in
// reverse order from any point of a failed start.
type devRun struct {
	cfg     devConfig
	dataDir string
	logger  *zap.Logger

	temporal  *temporaldev.Server
	client    interface{ Close() }
	app       *app
	worker    interface{ Stop() }
	workerErr chan error
	http      *httpServer

	stopped bool
}

func (d *devRun) start(ctx context.Context, httpL net.Listener) error {
	srv, err := temporaldev.Start(ctx, temporaldev.Options{
		DataDir:      d.dataDir,
		FrontendPort: d.cfg.TemporalPort,
		UIPort:       d.cfg.TemporalUIPort,
		Logger:       d.logger,
		Debug:        strings.EqualFold(d.cfg.Log.Level, "debug"),
	})
	if err != nil {
		if errors.Is(err, temporaldev.ErrPortTaken) {
			return &configError{err}
		}
		return fmt.Errorf("start embedded temporal: %w", err)
	}
	d.temporal = srv

	c, err := worker.Dial(ctx, worker.ClientConfig{
		Address:   srv.FrontendAddress(),
		Namespace: srv.Namespace(),
		Logger:    d.logger,
	})
	if err != nil {
		return err
	}
	d.client = c

	a, err := buildApp(ctx, appConfig{
		StoreDSN:       "sqlite:" + filepath.Join(d.dataDir, storeFile),
		Dev:            true,
		WithActivities: true,
	}, d.logger)
	if err != nil {
		return err
	}
	d.app = a

	d.workerErr = make(chan error, 1)
	w := worker.New(c, worker.Options{
		Logger:       d.logger,
		Activities:   a.Activities,
		OnFatalError: func(err error) { d.workerErr <- err },
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	d.worker = w

	publicURL := "http://" + httpL.Addr().String()
	h, err := api.NewServer(api.Deps{
		Logger:        d.logger,
		Temporal:      c,
		Store:         a.Store,
		PublicURL:     publicURL,
		TemporalUIURL: srv.UIURL(),
		Namespace:     srv.Namespace(),
		// Placeholder: ConsentAuthority and ClientID come from the Graph
		// simulator once wire.go starts it.
	})
	if err != nil {
		return fmt.Errorf("build HTTP handler: %w", err)
	}
	d.http = serveHTTP(httpL, h, d.logger)
	return nil
}

// stop undoes start in reverse: HTTP drained, worker stopped, store and
// simulators closed, Temporal stopped. It runs once; later calls return nil.
func (d *devRun) stop() error {
	if d.stopped {
		return nil
	}
	d.stopped = true

	var errs []error
	if d.http != nil {
		if err := d.http.Shutdown(d.cfg.ShutdownTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if d.worker != nil {
		d.worker.Stop()
	}
	if d.client != nil {
		d.client.Close()
	}
	if d.app != nil {
		if err := d.app.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close app: %w", err))
		}
	}
	if d.temporal != nil {
		if err := d.temporal.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		d.logger.Info("stopped")
	}
	return errors.Join(errs...)
}

// printDevBlock tells a person where everything listens.
func printDevBlock(w io.Writer, d *devRun) {
	portal := "http://" + d.http.Addr()
	rows := []endpoint{
		{"Portal", portal},
		{"Staff pages", portal + "/staff/login"},
		{"Temporal UI", d.temporal.UIURL()},
		{"Temporal gRPC", d.temporal.FrontendAddress() + " (namespace " +
			d.temporal.Namespace() + ")"},
	}
	rows = append(rows, d.app.Endpoints...)
	rows = append(rows, endpoint{"Data folder", d.dataDir})

	var b strings.Builder
	b.WriteString("\nOneSync dev is running. Press Ctrl-C to stop.\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-15s %s\n", r.Name, r.URL)
	}
	fmt.Fprintf(&b, "\n  Add a staff account: onesync staff add --store sqlite:%s --email you@setera.example\n\n",
		filepath.Join(d.dataDir, storeFile))
	_, _ = io.WriteString(w, b.String())
}
