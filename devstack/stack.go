// Package devstack runs the whole of OneSync on one machine: the embedded
// Temporal server with its UI, the Microsoft Graph and Entra simulator,
// the OneCloud simulator, the store, the worker and the portal. `onesync
// dev` runs it on fixed loopback ports with a data folder kept across
// restarts; integration tests, the browser journey and the benchmark run
// it on free ports. Everything listens on loopback only and nothing in it
// reaches another host.
package devstack

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/setera/onesync/activities"
	"github.com/setera/onesync/api"
	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/devstack/onecloudsim"
	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/graph"
	graphclient "github.com/setera/onesync/graph/client"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/sip"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/worker"
)

// Defaults of Options for `onesync dev`.
const (
	DefaultHTTPAddr     = "127.0.0.1:8080"
	DefaultGraphAddr    = graphsim.DefaultAddr
	DefaultOneCloudAddr = "127.0.0.1:8082"
	DefaultStaffEmail   = "staff@setera.example"

	// DevClientID is the application (client) id of the OneSync app in
	// the Graph simulator. It is an identifier, not a secret; the client
	// secret is generated at every start.
	DevClientID = "5f1c9a3e-7b2d-4c8e-a6f0-3d9b1e2c4a57"

	// StoreFile is OneSync's own SQLite database in the data folder.
	StoreFile = "onesync.db"
)

// workerStopTimeout is how long stopping the worker waits for running
// activities: a polling window ends within a poll when the worker stops, and
// it must have ended before the SIP lines are cleared, or a late PUBLISH
// could light a lamp again.
const workerStopTimeout = 10 * time.Second

// Connectors that Options.Connector names.
const (
	ConnectorOneCloud = "onecloud"
	ConnectorSIP      = "sip"
)

// Options configure Start. Zero values take the defaults of `onesync dev`
// except the ports of Temporal, where 0 picks a free port.
type Options struct {
	// DataDir holds the store and, unless InMemoryTemporal, Temporal's
	// SQLite file. Required.
	DataDir          string
	InMemoryTemporal bool

	// HTTPListener serves the portal when set; else HTTPAddr is bound.
	HTTPListener   net.Listener
	HTTPAddr       string
	GraphAddr      string
	OneCloudAddr   string
	TemporalPort   int
	TemporalUIPort int
	DisableUI      bool

	// SyncInterval and SyncWindow pace every tenant's presence sync; zero
	// keeps the workflow's defaults (2 s and 5 min).
	SyncInterval time.Duration
	SyncWindow   time.Duration

	// Connector is ConnectorOneCloud (the default: the OneCloud simulator's
	// REST contract) or ConnectorSIP (PUBLISH to a presence server, with
	// extensions from the CSV an admin uploads).
	Connector string
	SIP       sip.Config

	// StaffEmail is the staff account created at the first start.
	StaffEmail string

	// GraphClientSecret, OneCloudAPIKey and OneCloudSigningSecret are the
	// simulators' secrets; empty ones are generated for this run. A test
	// sets them to run a second worker process against the same stack.
	GraphClientSecret     string
	OneCloudAPIKey        string
	OneCloudSigningSecret string

	Logger *zap.Logger
	Debug  bool
}

// Stack is a running OneSync with its simulators.
type Stack struct {
	Temporal   *temporaldev.Server
	Client     client.Client
	Store      *store.DB
	Graph      *graphsim.Sim
	OneCloud   *onecloudsim.Sim
	Activities *activities.Activities
	Metrics    *prometheus.Registry

	// PortalURL is where the portal answers, e.g. http://127.0.0.1:8080.
	PortalURL string
	// StaffEmail logs in on the staff pages. StaffPassword is set only
	// when this start created the account: it is shown once, then only
	// its bcrypt hash is kept.
	StaffEmail    string
	StaffPassword string
	// DemoAdminEmail and DemoAdminPassword sign in on the Graph
	// simulator's consent page as the demo tenant's admin. The simulator
	// keeps no state across restarts, so the password is new every start.
	DemoAdminEmail    string
	DemoAdminPassword string

	logger         *zap.Logger
	graphSecret    string
	oneCloudKey    string
	oneCloudSecret string
	sip            *sip.Publisher
	worker         sdkworker.Worker
	failed         chan error // what stopped by itself: the worker or the portal
	http           *http.Server
	closers        []func() error
	stopped        bool
}

// Start runs the stack. On error whatever started is stopped again.
func Start(ctx context.Context, o Options) (*Stack, error) {
	o.defaults()
	if o.DataDir == "" {
		return nil, errors.New("devstack: a data folder is required")
	}
	s := &Stack{logger: o.Logger, StaffEmail: o.StaffEmail, failed: make(chan error, 2)}
	if err := s.start(ctx, o); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (o *Options) defaults() {
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.GraphAddr == "" {
		o.GraphAddr = DefaultGraphAddr
	}
	if o.OneCloudAddr == "" {
		o.OneCloudAddr = DefaultOneCloudAddr
	}
	if o.Connector == "" {
		o.Connector = ConnectorOneCloud
	}
	if o.StaffEmail == "" {
		o.StaffEmail = DefaultStaffEmail
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

func (s *Stack) start(ctx context.Context, o Options) error {
	httpL := o.HTTPListener
	if httpL == nil {
		l, err := net.Listen("tcp", o.HTTPAddr)
		if err != nil {
			return fmt.Errorf("portal address %s: %w", o.HTTPAddr, err)
		}
		httpL = l
	}
	s.closers = append(s.closers, func() error { _ = httpL.Close(); return nil })

	temporalDir := o.DataDir
	if o.InMemoryTemporal {
		temporalDir = ""
	}
	srv, err := temporaldev.Start(ctx, temporaldev.Options{
		DataDir:      temporalDir,
		InMemory:     o.InMemoryTemporal,
		FrontendPort: o.TemporalPort,
		UIPort:       o.TemporalUIPort,
		DisableUI:    o.DisableUI,
		Logger:       o.Logger,
		Debug:        o.Debug,
	})
	if err != nil {
		return fmt.Errorf("start embedded temporal: %w", err)
	}
	s.Temporal = srv
	s.closers = append(s.closers, srv.Stop)

	s.Metrics = prometheus.NewRegistry()
	s.Metrics.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	c, err := worker.Dial(ctx, worker.ClientConfig{
		Address:        srv.FrontendAddress(),
		Namespace:      srv.Namespace(),
		Logger:         o.Logger,
		MetricsHandler: worker.PrometheusMetrics(s.Metrics),
	})
	if err != nil {
		return err
	}
	s.Client = c
	s.closers = append(s.closers, func() error { c.Close(); return nil })

	db, err := store.Open(ctx, "sqlite:"+filepath.Join(o.DataDir, StoreFile))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.Store = db
	s.closers = append(s.closers, db.Close)

	if err := s.startSimulators(ctx, o); err != nil {
		return err
	}
	if err := s.buildActivities(o); err != nil {
		return err
	}
	if err := s.ensureStaff(ctx); err != nil {
		return err
	}

	s.worker = worker.New(c, worker.Options{
		Logger:       o.Logger,
		Activities:   s.Activities,
		SyncInterval: o.SyncInterval,
		SyncWindow:   o.SyncWindow,
		StopTimeout:  workerStopTimeout,
		OnFatalError: func(err error) { s.failed <- fmt.Errorf("worker stopped: %w", err) },
	})
	if err := s.worker.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}

	s.PortalURL = "http://" + httpL.Addr().String()
	directory := api.DirectoryOneCloud
	if o.Connector == ConnectorSIP {
		directory = api.DirectoryCSV
	}
	h, err := api.NewServer(api.Deps{
		Logger:           o.Logger,
		Temporal:         c,
		Store:            db,
		PublicURL:        s.PortalURL,
		ConsentAuthority: s.Graph.URL(),
		ClientID:         DevClientID,
		TemporalUIURL:    srv.UIURL(),
		Namespace:        srv.Namespace(),
		DirectorySource:  directory,
		Metrics:          promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}),
	})
	if err != nil {
		return fmt.Errorf("build portal: %w", err)
	}
	s.serve(httpL, h)
	return nil
}

// startSimulators starts the Graph and OneCloud simulators with secrets
// made for this run, and seeds their demo data.
func (s *Stack) startSimulators(ctx context.Context, o Options) error {
	secret := cmp.Or(o.GraphClientSecret, randomHex(24))
	s.Graph = graphsim.New(graphsim.Options{Seed: 1, ClientID: DevClientID, ClientSecret: secret})
	if err := s.Graph.Start(o.GraphAddr); err != nil {
		return fmt.Errorf("start Graph simulator: %w", err)
	}
	s.closers = append(s.closers, s.Graph.Close)

	demo := s.Graph.DemoTenant()
	s.DemoAdminEmail = demo.AdminEmail
	pw, err := s.Graph.AdminPassword(demo.ID)
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	s.DemoAdminPassword = pw

	// The simulator forgets every consent when the process ends, while
	// the store and Temporal remember the tenants that were connected.
	// Consent the simulator had granted is granted again, so that a
	// restart of `onesync dev` does not look like a revocation.
	tenants, err := s.Store.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	for _, t := range tenants {
		if t.State != store.TenantActive {
			continue
		}
		if _, err := s.Graph.Tenant(t.ID); err == nil {
			if err := s.Graph.Consent(t.ID); err != nil {
				return fmt.Errorf("restore consent of tenant %s: %w", t.ID, err)
			}
		}
	}

	s.oneCloudKey = cmp.Or(o.OneCloudAPIKey, randomHex(24))
	s.oneCloudSecret = cmp.Or(o.OneCloudSigningSecret, randomHex(32))
	s.OneCloud = onecloudsim.New(onecloudsim.Options{
		APIKey: s.oneCloudKey, SigningSecret: s.oneCloudSecret, Logger: o.Logger.Named("onecloudsim"),
	})
	if err := onecloudsim.SeedDemo(s.OneCloud); err != nil {
		return fmt.Errorf("seed OneCloud simulator: %w", err)
	}
	if err := s.restoreLamps(ctx, tenants); err != nil {
		return err
	}
	if err := s.OneCloud.Start(o.OneCloudAddr); err != nil {
		return fmt.Errorf("start OneCloud simulator: %w", err)
	}
	s.closers = append(s.closers, s.OneCloud.Close)
	s.graphSecret = secret
	return nil
}

// restoreLamps gives the OneCloud simulator back the line states the store
// recorded as pushed to it, as a real PBX would have kept them across a
// restart of `onesync dev`; the sync pushes only changes.
func (s *Stack) restoreLamps(ctx context.Context, tenants []store.Tenant) error {
	for _, t := range tenants {
		org, err := s.Store.Org(ctx, t.OrgID)
		if err != nil {
			return fmt.Errorf("read organisation %s: %w", t.OrgID, err)
		}
		links, err := s.Store.Links(ctx, t.ID)
		if err != nil {
			return fmt.Errorf("read links of tenant %s: %w", t.ID, err)
		}
		for _, l := range links {
			if l.LineState == "" {
				continue
			}
			// Extensions the simulator does not have (another
			// organisation's) are left alone.
			_ = s.OneCloud.Restore(org.PBXOrg, l.Extension, presence.LineState(l.LineState),
				l.Seq, l.ChangedAt)
		}
	}
	return nil
}

// buildActivities points the real Graph client and PBX connector at the
// simulators: only the configuration differs from production.
func (s *Stack) buildActivities(o Options) error {
	gc, err := graphclient.New(graph.Config{
		ClientID:     DevClientID,
		ClientSecret: s.graphSecret,
		Authority:    s.Graph.URL(),
		GraphBaseURL: s.Graph.URL() + "/v1.0",
		Logger:       o.Logger.Named("graph"),
	})
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}

	metrics, err := activities.NewMetrics(s.Metrics)
	if err != nil {
		return err
	}

	var conn pbx.Connector
	var dir pbx.Directory
	switch o.Connector {
	case ConnectorOneCloud:
		rest, err := pbx.NewREST(pbx.RESTConfig{
			BaseURL:       s.OneCloud.URL(),
			APIKey:        s.oneCloudKey,
			SigningSecret: s.oneCloudSecret,
			Logger:        o.Logger.Named("pbx"),
		})
		if err != nil {
			return fmt.Errorf("OneCloud connector: %w", err)
		}
		conn = rest
	case ConnectorSIP:
		sc := o.SIP
		if sc.Logger == nil {
			sc.Logger = o.Logger.Named("sip")
		}
		pub, err := sip.New(sc)
		if err != nil {
			return fmt.Errorf("SIP connector: %w", err)
		}
		s.sip = pub
		dir = s.Store.Directory()
		conn = pbx.Combine(dir, pub)
	default:
		return fmt.Errorf("connector %q: want %s or %s", o.Connector,
			ConnectorOneCloud, ConnectorSIP)
	}

	s.Activities = &activities.Activities{
		Store:     s.Store,
		Graph:     gc,
		PBX:       conn,
		Directory: dir,
		Logger:    o.Logger,
		Metrics:   metrics,
	}
	return nil
}

// ensureStaff creates the staff account on the first start.
func (s *Stack) ensureStaff(ctx context.Context) error {
	_, err := s.Store.StaffByEmail(ctx, s.StaffEmail)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read staff account: %w", err)
	}
	pw := randomHex(8)
	hash, err := api.HashPassword(pw)
	if err != nil {
		return err
	}
	err = s.Store.CreateStaff(ctx, store.Staff{
		ID: "staff-" + randomHex(8), Email: s.StaffEmail, Name: "Setera staff",
		PasswordHash: hash, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("create staff account: %w", err)
	}
	s.StaffPassword = pw
	return nil
}

func (s *Stack) serve(l net.Listener, h http.Handler) {
	s.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(s.logger.Named("http")),
	}
	go func() {
		if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("portal stopped: %w", err)
		}
	}()
}

// Failed delivers an error when the worker or the portal stopped by
// itself; a clean Stop delivers nothing.
func (s *Stack) Failed() <-chan error { return s.failed }

// StopWorker stops the worker alone, as a crash or a deploy would; tests
// then start another with StartWorker.
func (s *Stack) StopWorker() {
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// StartWorker starts a new worker with the same activities.
func (s *Stack) StartWorker(o Options) error {
	if s.worker != nil {
		return errors.New("devstack: a worker is already running")
	}
	w := worker.New(s.Client, worker.Options{
		Logger: s.logger, Activities: s.Activities,
		SyncInterval: o.SyncInterval, SyncWindow: o.SyncWindow, StopTimeout: workerStopTimeout,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	s.worker = w
	return nil
}

// Stop undoes Start in reverse: the portal drained, the worker stopped
// (in a SIP deployment after clearing every line it made busy), then the
// simulators, the store and Temporal. It is safe to call twice.
func (s *Stack) Stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true

	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain portal: %w", err))
			_ = s.http.Close()
		}
		cancel()
	}
	s.StopWorker()
	if s.sip != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.sip.ClearAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clear SIP lines: %w", err))
		}
		cancel()
		_ = s.sip.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("devstack: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b)
}
