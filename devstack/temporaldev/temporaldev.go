// Package temporaldev runs a complete Temporal server and the Temporal UI
// inside the OneSync process, for `onesync dev` and for tests. State lives
// in a SQLite file under the data folder, so that workflows survive a
// restart; an in-memory variant serves tests that need no restart.
//
// It is a development server: one history shard, no TLS, no
// authorisation, loopback addresses only. It must never be used as the
// production Temporal; `onesync worker` and `onesync api` connect to a
// real cluster instead.
package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/setera/onesync/logging"
	"github.com/setera/onesync/logging/serverlog"
	"github.com/setera/onesync/workflows"
)

// DatabaseFile is the name of the SQLite file in the data folder.
const DatabaseFile = "temporal.db"

// DefaultNamespace is the namespace created when Options leave it empty.
const DefaultNamespace = "default"

// startTimeout bounds how long Start waits for the frontend and the UI to
// answer once the services were started.
const startTimeout = 60 * time.Second

// SearchAttributes are the custom search attributes OneSync's workflows
// set, with their types. Start registers them; a production cluster must
// have them registered by its operator.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	workflows.SearchAttrStage:  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	workflows.SearchAttrOrg:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	workflows.SearchAttrTenant: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Options configure Start.
type Options struct {
	// DataDir is the folder that holds the SQLite file. It is created if
	// missing. It is required unless InMemory is set.
	DataDir string
	// InMemory keeps all state in memory: it is lost on Stop.
	InMemory bool
	// Host is the loopback address every part listens on; default 127.0.0.1.
	Host string
	// FrontendPort is the gRPC port clients dial; 0 picks a free port.
	FrontendPort int
	// UIPort is the Temporal UI's HTTP port; 0 picks a free port.
	UIPort int
	// DisableUI starts the server without the UI.
	DisableUI bool
	// Namespace is created at start; default "default".
	Namespace string
	// Logger receives the server's lines; nil discards them.
	Logger *zap.Logger
	// Debug lets the server's debug and info lines through; otherwise only
	// its warnings and errors are logged, which keeps `onesync dev` readable.
	Debug bool
}

// Server is a running embedded Temporal server with its UI.
type Server struct {
	opts     Options
	frontend string
	uiAddr   string
	dbPath   string

	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}

	// quiet silences the server's lines below DPanic while it stops: its
	// services complain about each other going away, which tells nothing.
	quiet atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start runs the server and returns once its frontend answers, the
// namespace exists, the search attributes are registered and the UI (unless
// disabled) serves pages. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.normalise(); err != nil {
		return nil, err
	}

	// Every port is held until the server is about to bind them all, so
	// that no two parts get the same one.
	ports := newPortPicker(opts.Host)
	defer ports.release()

	frontendPort, err := ports.claim(opts.FrontendPort, "Temporal frontend")
	if err != nil {
		return nil, err
	}
	uiPort := 0
	if !opts.DisableUI {
		if uiPort, err = ports.claim(opts.UIPort, "Temporal UI"); err != nil {
			return nil, err
		}
	}
	internal := make([]int, 2*len(temporal.DefaultServices)-1)
	for i := range internal {
		if internal[i], err = ports.pick(); err != nil {
			return nil, err
		}
	}

	s := &Server{
		opts:     opts,
		frontend: net.JoinHostPort(opts.Host, strconv.Itoa(frontendPort)),
	}
	if !opts.DisableUI {
		s.uiAddr = net.JoinHostPort(opts.Host, strconv.Itoa(uiPort))
	}

	sqlCfg, err := s.prepareDatabase()
	if err != nil {
		return nil, err
	}

	srv, err := s.newTemporal(sqlCfg, frontendPort, internal, ports.release)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	s.temporal = srv

	if err := s.finishStart(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// finishStart waits for the frontend, registers the search attributes and
// starts the UI.
func (s *Server) finishStart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	c, err := s.dialReady(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	if err := registerSearchAttributes(ctx, c, s.opts.Namespace); err != nil {
		return err
	}

	if s.opts.DisableUI {
		return nil
	}
	return s.startUI(ctx)
}

// FrontendAddress is the host:port that Temporal clients dial.
func (s *Server) FrontendAddress() string { return s.frontend }

// UIAddress is the host:port of the Temporal UI, empty when it is disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// UIURL is the address of the Temporal UI for a browser, empty when it is
// disabled.
func (s *Server) UIURL() string {
	if s.uiAddr == "" {
		return ""
	}
	return "http://" + s.uiAddr
}

// Namespace is the namespace the server created at start.
func (s *Server) Namespace() string { return s.opts.Namespace }

// DatabasePath is the SQLite file, empty for an in-memory server.
func (s *Server) DatabasePath() string { return s.dbPath }

// NewClient dials the server; HostPort and, when empty, Namespace are set
// from the server.
func (s *Server) NewClient(ctx context.Context, opts client.Options) (client.Client, error) {
	opts.HostPort = s.frontend
	if opts.Namespace == "" {
		opts.Namespace = s.opts.Namespace
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial embedded temporal at %s: %w", s.frontend, err)
	}
	return c, nil
}

// Stop shuts the UI and the server down. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.quiet.Store(true)
		if s.ui != nil {
			s.ui.Stop()
			select {
			case <-s.uiDone:
			case <-time.After(5 * time.Second):
				// The UI had not begun serving when it was stopped.
			}
		}
		if s.temporal != nil {
			if err := s.temporal.Stop(); err != nil {
				s.stopErr = fmt.Errorf("stop temporal server: %w", err)
			}
		}
	})
	return s.stopErr
}

// serverLevel is the level filter of the server's lines: warnings and
// errors, everything with Debug, almost nothing while stopping.
func (s *Server) serverLevel() zapcore.LevelEnabler {
	base := zapcore.WarnLevel
	if s.opts.Debug {
		base = zapcore.DebugLevel
	}
	core := s.opts.Logger.Core()
	return zap.LevelEnablerFunc(func(l zapcore.Level) bool {
		if s.quiet.Load() && !s.opts.Debug {
			return l >= zapcore.DPanicLevel
		}
		return l >= base && core.Enabled(l)
	})
}

func (o *Options) normalise() error {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if ip := net.ParseIP(o.Host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("temporal dev server: host %q is not a loopback address", o.Host)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	for _, p := range []struct {
		name string
		port int
	}{{"frontend", o.FrontendPort}, {"UI", o.UIPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("temporal dev server: %s port %d is out of range", p.name, p.port)
		}
	}
	if o.InMemory {
		if o.DataDir != "" {
			return errors.New("temporal dev server: set either DataDir or InMemory, not both")
		}
		return nil
	}
	if o.DataDir == "" {
		return errors.New("temporal dev server: DataDir is required unless InMemory is set")
	}
	// The SQLite plugin puts the path into a file: URI unescaped.
	if strings.ContainsAny(o.DataDir, "?#") {
		return fmt.Errorf("temporal dev server: data folder %q must not contain ? or #", o.DataDir)
	}
	return nil
}

// prepareDatabase returns the SQLite settings, creating the file with its
// schema on first start and the namespace if it is missing. A file that
// exists is reused as it is, which is what keeps workflows across restarts.
func (s *Server) prepareDatabase() (*config.SQL, error) {
	cfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
	}

	if s.opts.InMemory {
		cfg.DatabaseName = fmt.Sprintf("onesync-%d", time.Now().UnixNano())
		cfg.ConnectAttributes["mode"] = "memory"
		cfg.ConnectAttributes["cache"] = "shared"
	} else {
		dir, err := filepath.Abs(s.opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("temporal dev server: data folder %q: %w", s.opts.DataDir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("temporal dev server: create data folder: %w", err)
		}
		s.dbPath = filepath.Join(dir, DatabaseFile)
		cfg.DatabaseName = s.dbPath
		cfg.ConnectAttributes["mode"] = "rwc"
		// WAL keeps the file consistent if the process is killed mid-write.
		cfg.ConnectAttributes["journal_mode"] = "wal"
		cfg.ConnectAttributes["synchronous"] = "NORMAL"

		fresh, err := isMissing(s.dbPath)
		if err != nil {
			return nil, err
		}
		if fresh {
			if err := sqliteschema.SetupSchema(cfg); err != nil {
				_ = os.Remove(s.dbPath) // a half-made file would be reused next time
				return nil, fmt.Errorf("temporal dev server: set up schema in %s: %w", s.dbPath, err)
			}
		} else if err := forgetMembers(cfg); err != nil {
			return nil, err
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, s.opts.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server: namespace %q: %w", s.opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return nil, fmt.Errorf("temporal dev server: create namespace %q: %w", s.opts.Namespace, err)
	}
	return cfg, nil
}

const clusterName = "active"

// forgetMembers deletes the cluster membership rows of the previous run.
// Each run listens on new internal ports; without this the new services
// wait for the old, dead ones to time out (about a minute) before they
// serve. Only this process uses the file, so every row is stale.
func forgetMembers(cfg *config.SQL) error {
	db, err := sql.NewSQLDB(sqlplugin.DbKindMain, cfg, resolver.NewNoopResolver(),
		log.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("temporal dev server: open %s: %w", cfg.DatabaseName, err)
	}
	defer func() { _ = db.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = db.PruneClusterMembership(ctx, &sqlplugin.PruneClusterMembershipFilter{
		PruneRecordsBefore: time.Now().AddDate(100, 0, 0),
	})
	if err != nil {
		return fmt.Errorf("temporal dev server: forget the previous run's members: %w", err)
	}
	return nil
}

// newTemporal builds the server: the four services in this process, each
// on its own loopback port, one history shard, archival off. internal holds
// the ports other than the frontend's; release frees them all just before
// the server is built, because building it may bind them.
func (s *Server) newTemporal(sqlCfg *config.SQL, frontendPort int, internal []int,
	release func()) (temporal.Server, error) {
	host := s.opts.Host

	next := func() int {
		p := internal[0]
		internal = internal[1:]
		return p
	}
	services := map[string]config.Service{}
	for _, name := range temporal.DefaultServices {
		grpcPort := frontendPort
		if name != "frontend" {
			grpcPort = next()
		}
		services[name] = config.Service{RPC: config.RPC{
			GRPCPort:       grpcPort,
			MembershipPort: next(),
			BindOnIP:       host,
		}}
	}

	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{
				MaxJoinDuration:  30 * time.Second,
				BroadcastAddress: host,
			},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores: map[string]config.DataStore{
				sqliteplugin.PluginName: {SQL: sqlCfg},
			},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {
					Enabled:                true,
					InitialFailoverVersion: 1,
					RPCAddress:             s.frontend,
				},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		// The server's own system workers dial this address.
		PublicClient: config.PublicClient{HostPort: s.frontend},
	}

	logger := serverlog.New(s.opts.Logger.WithOptions(zap.IncreaseLevel(s.serverLevel())))

	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server: claim mapper: %w", err)
	}

	dyn := dynamicconfig.StaticClient{
		// A search attribute added at start is usable by the next call.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{
			{Value: true},
		},
	}

	release()
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server: create: %w", err)
	}
	return srv, nil
}

// dialReady dials the frontend until it answers a health check and knows
// the namespace.
func (s *Server) dialReady(ctx context.Context) (client.Client, error) {
	var lastErr error
	for {
		c, err := client.DialContext(ctx, client.Options{
			HostPort:  s.frontend,
			Namespace: s.opts.Namespace,
			Logger:    logging.NewSDKLogger(zap.NewNop()),
		})
		if err == nil {
			_, err = c.WorkflowService().DescribeNamespace(ctx,
				describeNamespace(s.opts.Namespace))
			if err == nil {
				return c, nil
			}
			c.Close()
		}
		lastErr = err

		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("temporal dev server: frontend %s did not answer: %w",
				s.frontend, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// registerSearchAttributes adds every attribute of SearchAttributes that
// the namespace lacks. It is idempotent: a restart finds them present.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	list, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("temporal dev server: list search attributes: %w", err)
	}

	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes {
		have, ok := list.GetCustomAttributes()[name]
		if !ok {
			missing[name] = typ
			continue
		}
		if have != typ {
			return fmt.Errorf("temporal dev server: search attribute %s has type %s, want %s",
				name, have, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}

	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("temporal dev server: add search attributes: %w", err)
	}
	return nil
}

// startUI runs the Temporal UI against the frontend and waits until it
// serves its health route.
func (s *Server) startUI(ctx context.Context) error {
	_, portText, _ := net.SplitHostPort(s.uiAddr)
	port, _ := strconv.Atoi(portText)

	// The UI server ends the process on a listen error, so the port is
	// checked once more right before it starts.
	if err := checkFree(s.opts.Host, port, "Temporal UI"); err != nil {
		return err
	}

	cfg := &uiconfig.Config{
		TemporalGRPCAddress: s.frontend,
		Host:                s.opts.Host,
		Port:                port,
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		// The dev UI runs without network access beyond loopback.
		DisableNewsFetch: true,
		HideLogs:         true,
		CORS:             uiconfig.CORS{CookieInsecure: true},
	}
	s.ui = uiserver.NewServer(server_options.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()

	hc := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.uiAddr + "/healthz"
	for {
		resp, err := hc.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal dev server: UI at %s did not answer: %w", s.uiAddr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isMissing(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return false, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	return false, fmt.Errorf("temporal dev server: %w", err)
}
