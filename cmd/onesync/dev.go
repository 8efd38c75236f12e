package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/devstack/temporaldev"
)

// runDev runs everything on this machine until ctx is cancelled: the
// embedded Temporal server and UI, both simulators, the worker and the
// portal (package devstack).
func runDev(ctx context.Context, env *runEnv, args []string) error {
	var cfg devConfig
	f, logger, err := setUp(env, "dev",
		"Runs Temporal with its UI, the Graph and OneCloud simulators, the worker\n"+
			"and the portal on this machine, keeping state in the data folder across restarts.", &cfg, args)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

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
	// The other ports are only tried here, so that every taken one is
	// named with its flag before anything starts.
	var taken []error
	for _, a := range []struct{ flag, addr string }{
		{"--graph-addr", cfg.GraphAddr}, {"--onecloud-addr", cfg.OneCloudAddr},
		{"--temporal-port", portAddr(cfg.TemporalPort)},
		{"--temporal-ui-port", portAddr(cfg.TemporalUIPort)},
	} {
		l, err := listen(a.flag, a.addr)
		if err != nil {
			taken = append(taken, errors.Unwrap(err))
			continue
		}
		_ = l.Close()
	}
	if len(taken) > 0 {
		_ = httpL.Close()
		return &configError{errors.Join(taken...)}
	}
	f.log(logger)

	s, err := devstack.Start(ctx, devstack.Options{
		DataDir:        dataDir,
		HTTPListener:   httpL,
		GraphAddr:      cfg.GraphAddr,
		OneCloudAddr:   cfg.OneCloudAddr,
		TemporalPort:   cfg.TemporalPort,
		TemporalUIPort: cfg.TemporalUIPort,
		SyncInterval:   cfg.Sync.Interval,
		SyncWindow:     cfg.Sync.Window,
		Connector:      cfg.Connector,
		SIP:            cfg.SIP.config(),
		Logger:         logger,
		Debug:          strings.EqualFold(cfg.Log.Level, "debug"),
	})
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("stopped before the start was complete")
			return nil
		}
		if errors.Is(err, temporaldev.ErrPortTaken) {
			return &configError{err}
		}
		return err
	}

	printDevBlock(env.stdout, s, dataDir)
	logger.Info("onesync dev is running; Ctrl-C stops it")

	var failed error
	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case failed = <-s.Failed():
	}
	if err := s.Stop(); err != nil {
		return errors.Join(failed, err)
	}
	if failed == nil {
		logger.Info("stopped")
	}
	return failed
}

// portAddr is the loopback address of a dev port; 0 picks a free one.
func portAddr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// printDevBlock tells a person what to open and which accounts exist; it
// is the first thing `onesync dev` prints once it serves.
func printDevBlock(w io.Writer, s *devstack.Stack, dataDir string) {
	var b strings.Builder
	row := func(name, value string) { fmt.Fprintf(&b, "  %-15s %s\n", name, value) }

	b.WriteString("\nOneSync dev is running. Press Ctrl-C to stop.\n\n")
	row("Portal", s.PortalURL)
	row("Staff pages", s.PortalURL+"/staff/login")
	row("Temporal UI", s.Temporal.UIURL())
	row("Temporal gRPC", s.Temporal.FrontendAddress()+" (namespace "+s.Temporal.Namespace()+")")
	row("Graph sim", s.Graph.URL()+"/control")
	row("OneCloud sim", s.OneCloud.URL()+"/panel/"+onecloudsim.DemoOrg)
	row("Metrics", s.PortalURL+"/metrics")
	row("Data folder", dataDir)

	b.WriteString("\nAccounts:\n")
	if s.StaffPassword != "" {
		row("Staff", s.StaffEmail+"  password "+s.StaffPassword+"  (shown once; note it)")
	} else {
		row("Staff", s.StaffEmail+"  (password shown at the first start; "+
			"`onesync staff add` makes another account)")
	}
	row("Microsoft", s.DemoAdminEmail+"  password "+s.DemoAdminPassword+
		"  (demo tenant admin on the Graph simulator's consent page; new every start)")
	row("OneCloud id", onecloudsim.DemoOrg+"  (type it as the OneCloud customer id when you register)")
	b.WriteString("\nTry it: register at the portal, approve on the staff pages, then connect Teams\n" +
		"under Settings > Teams; README.md walks the whole path.\n\n")
	_, _ = io.WriteString(w, b.String())
}
