package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/logging"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/sip"
	"github.com/setera/onesync/worker"
	"github.com/setera/onesync/workflows"
)

// logConfig is the logging part of every subcommand's configuration.
type logConfig struct {
	Level  string
	Format string
}

func (c *logConfig) register(f *flags, defaultFormat string) {
	f.fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
	f.fs.StringVar(&c.Format, "log-format", defaultFormat, "log format: console or json")
}

func (c *logConfig) validate() error {
	if _, err := logging.ParseLevel(c.Level); err != nil {
		return configErrorf("--log-level: %w", err)
	}
	if c.Format != logging.ModeConsole && c.Format != logging.ModeJSON {
		return configErrorf("--log-format %q: want console or json", c.Format)
	}
	return nil
}

// temporalConfig says how `worker` and `api` reach a Temporal cluster.
type temporalConfig struct {
	Address       string
	Namespace     string
	TLS           bool
	TLSCert       string
	TLSKey        string
	TLSCA         string
	TLSServerName string
	APIKey        string
	DialTimeout   time.Duration
}

func (c *temporalConfig) register(f *flags) {
	f.fs.StringVar(&c.Address, "temporal-address", "127.0.0.1:7233",
		"host:port of the Temporal frontend")
	f.fs.StringVar(&c.Namespace, "temporal-namespace", "default", "Temporal namespace")
	f.fs.BoolVar(&c.TLS, "temporal-tls", false,
		"connect with TLS (implied by a certificate, a CA or an API key)")
	f.fs.StringVar(&c.TLSCert, "temporal-tls-cert", "", "client certificate file (PEM) for mTLS")
	f.fs.StringVar(&c.TLSKey, "temporal-tls-key", "", "client key file (PEM) for mTLS")
	f.fs.StringVar(&c.TLSCA, "temporal-tls-ca", "",
		"CA certificate file (PEM) for the server; default: the system roots")
	f.fs.StringVar(&c.TLSServerName, "temporal-tls-server-name", "",
		"server name to verify; default: the address's host")
	f.fs.StringVar(&c.APIKey, "temporal-api-key", "", "API key, for Temporal Cloud")
	f.secret("temporal-api-key")
	f.fs.DurationVar(&c.DialTimeout, "temporal-dial-timeout", worker.DefaultDialTimeout,
		"how long to wait for Temporal to answer at start")
}

func (c *temporalConfig) validate() error {
	if err := checkHostPort("--temporal-address", c.Address); err != nil {
		return err
	}
	if strings.TrimSpace(c.Namespace) == "" {
		return configErrorf("--temporal-namespace is empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return configErrorf("--temporal-tls-cert and --temporal-tls-key must be given together")
	}
	for name, path := range map[string]string{
		"--temporal-tls-cert": c.TLSCert, "--temporal-tls-key": c.TLSKey,
		"--temporal-tls-ca": c.TLSCA,
	} {
		if path == "" {
			continue
		}
		if err := checkReadable(path); err != nil {
			return configErrorf("%s: %w", name, err)
		}
	}
	if c.DialTimeout <= 0 {
		return configErrorf("--temporal-dial-timeout must be positive, not %s", c.DialTimeout)
	}
	return nil
}

func (c *temporalConfig) client() worker.ClientConfig {
	return worker.ClientConfig{
		Address:     c.Address,
		Namespace:   c.Namespace,
		TLS:         c.TLS,
		CertFile:    c.TLSCert,
		KeyFile:     c.TLSKey,
		CAFile:      c.TLSCA,
		ServerName:  c.TLSServerName,
		APIKey:      c.APIKey,
		DialTimeout: c.DialTimeout,
	}
}

// devConfig configures `onesync dev`.
type devConfig struct {
	DataDir         string
	HTTPAddr        string
	GraphAddr       string
	OneCloudAddr    string
	TemporalPort    int
	TemporalUIPort  int
	ShutdownTimeout time.Duration
	Sync            syncConfig
	Connector       string
	SIP             sipConfig
	Log             logConfig
}

func (c *devConfig) register(f *flags) {
	f.fs.StringVar(&c.DataDir, "data-dir", ".onesync",
		"folder for the Temporal and OneSync databases; kept across restarts")
	f.fs.StringVar(&c.HTTPAddr, "http-addr", devstack.DefaultHTTPAddr,
		"loopback host:port of the portal, staff pages and health probes")
	f.fs.StringVar(&c.GraphAddr, "graph-addr", devstack.DefaultGraphAddr,
		"loopback host:port of the Microsoft Graph and Entra simulator")
	f.fs.StringVar(&c.OneCloudAddr, "onecloud-addr", devstack.DefaultOneCloudAddr,
		"loopback host:port of the OneCloud simulator and its busy-lamp panel")
	f.fs.IntVar(&c.TemporalPort, "temporal-port", 7233,
		"gRPC port of the embedded Temporal server on 127.0.0.1")
	f.fs.IntVar(&c.TemporalUIPort, "temporal-ui-port", 8233,
		"HTTP port of the Temporal UI on 127.0.0.1")
	f.fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second,
		"how long open HTTP requests get to finish on Ctrl-C")
	f.fs.StringVar(&c.Connector, "connector", devstack.ConnectorOneCloud,
		"where line states go: onecloud (the OneCloud simulator) or sip (a presence server)")
	c.Sync.register(f)
	c.SIP.register(f)
	c.Log.register(f, logging.ModeConsole)
}

// validate checks what can be checked before anything starts; the ports
// are checked for real when they are bound, right after.
func (c *devConfig) validate() error {
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := checkWritableDir("--data-dir", c.DataDir); err != nil {
		return err
	}
	for name, addr := range map[string]string{
		"--http-addr": c.HTTPAddr, "--graph-addr": c.GraphAddr, "--onecloud-addr": c.OneCloudAddr,
	} {
		if err := checkLoopbackAddr(name, addr); err != nil {
			return err
		}
	}
	if err := checkPort("--temporal-port", c.TemporalPort); err != nil {
		return err
	}
	if err := checkPort("--temporal-ui-port", c.TemporalUIPort); err != nil {
		return err
	}
	if c.TemporalPort != 0 && c.TemporalPort == c.TemporalUIPort {
		return configErrorf("--temporal-port and --temporal-ui-port are both %d", c.TemporalPort)
	}
	if err := c.Sync.validate(); err != nil {
		return err
	}
	switch c.Connector {
	case devstack.ConnectorOneCloud:
	case devstack.ConnectorSIP:
		if err := c.SIP.validate(); err != nil {
			return err
		}
		if err := checkLoopbackAddr("--sip-server", c.SIP.Server); err != nil {
			return err
		}
	default:
		return configErrorf("--connector %q: want onecloud or sip", c.Connector)
	}
	return checkPositive("--shutdown-timeout", c.ShutdownTimeout)
}

// syncConfig is the pace of the presence syncs a worker runs.
type syncConfig struct {
	Interval time.Duration
	Window   time.Duration
}

func (c *syncConfig) register(f *flags) {
	f.fs.DurationVar(&c.Interval, "sync-interval", workflows.DefaultSyncInterval,
		"how often each tenant's presences are read from Graph")
	f.fs.DurationVar(&c.Window, "sync-window", workflows.DefaultSyncWindow,
		"how long one polling activity runs before the workflow starts the next")
}

func (c *syncConfig) validate() error {
	if c.Interval < workflows.MinSyncInterval {
		return configErrorf("--sync-interval %s: must be at least %s", c.Interval,
			workflows.MinSyncInterval)
	}
	if c.Window < c.Interval || c.Window > workflows.MaxSyncWindow {
		return configErrorf("--sync-window %s: must be from --sync-interval (%s) to %s",
			c.Window, c.Interval, workflows.MaxSyncWindow)
	}
	return nil
}

// sipConfig reaches a SIP presence server (connector sip).
type sipConfig struct {
	Server          string
	Transport       string
	Domain          string
	Expires         time.Duration
	Username        string
	Password        string
	PublishPresence bool
}

func (c *sipConfig) register(f *flags) {
	f.fs.StringVar(&c.Server, "sip-server", "", "host:port of the SIP presence server")
	f.fs.StringVar(&c.Transport, "sip-transport", string(sip.UDP), "udp, tcp or tls")
	f.fs.StringVar(&c.Domain, "sip-domain", "",
		"SIP domain of the presentities: phones subscribe to sip:<extension>@<domain>")
	f.fs.DurationVar(&c.Expires, "sip-expires", sip.DefaultExpires,
		"lifetime asked for each publication; refreshed before it runs out")
	f.fs.StringVar(&c.Username, "sip-username", "", "digest user name, if the server asks")
	f.fs.StringVar(&c.Password, "sip-password", "", "digest password, if the server asks")
	f.secret("sip-password")
	f.fs.BoolVar(&c.PublishPresence, "sip-publish-presence", false,
		"also PUBLISH Event: presence (PIDF with RPID activities)")
}

func (c *sipConfig) config() sip.Config {
	return sip.Config{
		Server: c.Server, Transport: sip.Transport(c.Transport), Domain: c.Domain,
		Expires: c.Expires, Username: c.Username, Password: c.Password,
		PublishPresence: c.PublishPresence,
	}
}

func (c *sipConfig) validate() error {
	if err := c.config().Validate(); err != nil {
		return configErrorf("SIP connector: %w", err)
	}
	return nil
}

// workerConfig configures `onesync worker`.
type workerConfig struct {
	Temporal        temporalConfig
	Store           string
	ShutdownTimeout time.Duration
	Log             logConfig

	Graph       graphConfig
	PBX         pbxConfig
	Sync        syncConfig
	MetricsAddr string
}

func (c *workerConfig) register(f *flags) {
	c.Temporal.register(f)
	registerStore(f, &c.Store)
	c.Graph.register(f)
	c.PBX.register(f)
	c.Sync.register(f)
	f.fs.StringVar(&c.MetricsAddr, "metrics-addr", "",
		"host:port to serve Prometheus metrics on /metrics; empty: not served")
	f.fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second,
		"how long running activities get to finish on SIGTERM")
	c.Log.register(f, logging.ModeJSON)
}

func (c *workerConfig) validate() error {
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := c.Temporal.validate(); err != nil {
		return err
	}
	if err := checkStoreDSN(c.Store); err != nil {
		return err
	}
	if err := c.Graph.validate(true); err != nil {
		return err
	}
	if err := c.PBX.validate(); err != nil {
		return err
	}
	if err := c.Sync.validate(); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if err := checkHostPort("--metrics-addr", c.MetricsAddr); err != nil {
			return err
		}
	}
	return checkPositive("--shutdown-timeout", c.ShutdownTimeout)
}

// graphConfig is OneSync's multi-tenant Entra application.
type graphConfig struct {
	ClientID     string
	ClientSecret string
	Authority    string
	BaseURL      string
	GlobalRate   float64
}

func (c *graphConfig) register(f *flags) {
	f.fs.StringVar(&c.ClientID, "graph-client-id", "",
		"application (client) id of the OneSync multi-tenant app in Entra ID")
	f.fs.StringVar(&c.ClientSecret, "graph-client-secret", "",
		"client secret of that app (prefer the environment variable)")
	f.secret("graph-client-secret")
	f.fs.StringVar(&c.Authority, "graph-authority", graph.DefaultAuthority,
		"Entra ID authority for tokens and admin consent")
	f.fs.StringVar(&c.BaseURL, "graph-base-url", graph.DefaultGraphBaseURL,
		"Microsoft Graph base URL")
	f.fs.Float64Var(&c.GlobalRate, "graph-global-rate", graph.DefaultGlobalRate,
		"Graph requests per second over all tenants, for this worker")
}

// validate checks the app's settings; the api needs no secret.
func (c *graphConfig) validate(needSecret bool) error {
	cfg := c.config()
	if !needSecret {
		cfg.ClientSecret = "not needed by the api"
	}
	if err := cfg.Validate(); err != nil {
		return configErrorf("Graph settings: %w", err)
	}
	return nil
}

func (c *graphConfig) config() graph.Config {
	return graph.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Authority: c.Authority,
		GraphBaseURL: c.BaseURL, GlobalRate: c.GlobalRate,
	}
}

// pbxConfig says where line states go and where extensions come from.
type pbxConfig struct {
	Connector  string
	RESTURL    string
	RESTKey    string
	RESTSecret string
	SIP        sipConfig
}

func (c *pbxConfig) register(f *flags) {
	f.fs.StringVar(&c.Connector, "connector", devstack.ConnectorOneCloud,
		"PBX connector: onecloud (REST contract, docs/onecloud-rest.md) or sip (PUBLISH)")
	f.fs.StringVar(&c.RESTURL, "onecloud-url", "", "base URL of the OneCloud REST API")
	f.fs.StringVar(&c.RESTKey, "onecloud-api-key", "", "bearer key of the OneCloud REST API")
	f.secret("onecloud-api-key")
	f.fs.StringVar(&c.RESTSecret, "onecloud-signing-secret", "",
		"shared secret that signs request bodies (HMAC-SHA256)")
	f.secret("onecloud-signing-secret")
	c.SIP.register(f)
}

func (c *pbxConfig) validate() error {
	switch c.Connector {
	case devstack.ConnectorOneCloud:
		if _, err := pbx.NewREST(c.rest()); err != nil {
			return configErrorf("OneCloud connector: %w", err)
		}
		return nil
	case devstack.ConnectorSIP:
		return c.SIP.validate()
	}
	return configErrorf("--connector %q: want onecloud or sip", c.Connector)
}

func (c *pbxConfig) rest() pbx.RESTConfig {
	return pbx.RESTConfig{BaseURL: c.RESTURL, APIKey: c.RESTKey, SigningSecret: c.RESTSecret}
}

// apiConfig configures `onesync api`.
type apiConfig struct {
	Temporal        temporalConfig
	Store           string
	HTTPAddr        string
	PublicURL       string
	TemporalUIURL   string
	SecureCookies   bool
	TrustedProxies  string
	ShutdownTimeout time.Duration
	Log             logConfig

	Graph     graphConfig
	Directory string
}

func (c *apiConfig) register(f *flags) {
	c.Temporal.register(f)
	registerStore(f, &c.Store)
	f.fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080",
		"host:port to serve HTTP on (use :8080 in a container)")
	f.fs.StringVar(&c.PublicURL, "public-url", "",
		"the portal's address as browsers see it, e.g. https://onesync.example.com")
	f.fs.StringVar(&c.TemporalUIURL, "temporal-ui-url", "",
		"the Temporal UI's address, for links from the staff pages; empty: no links")
	f.fs.BoolVar(&c.SecureCookies, "secure-cookies", false,
		"mark cookies Secure, for a deployment behind a TLS-terminating proxy")
	f.fs.StringVar(&c.TrustedProxies, "trusted-proxies", "",
		"comma-separated proxy addresses whose X-Forwarded-For is believed")
	f.fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second,
		"how long open HTTP requests get to finish on SIGTERM")
	c.Graph.register(f)
	f.fs.StringVar(&c.Directory, "directory", "onecloud",
		"where the import finds extensions: onecloud (the PBX's API) or csv "+
			"(admins upload a list; use with the worker's --connector sip)")
	c.Log.register(f, logging.ModeJSON)
}

func (c *apiConfig) validate() error {
	if err := c.Graph.validate(false); err != nil {
		return err
	}
	if c.Directory != "onecloud" && c.Directory != "csv" {
		return configErrorf("--directory %q: want onecloud or csv", c.Directory)
	}
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := c.Temporal.validate(); err != nil {
		return err
	}
	if err := checkStoreDSN(c.Store); err != nil {
		return err
	}
	if err := checkHostPort("--http-addr", c.HTTPAddr); err != nil {
		return err
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}
	if err := checkURL("--public-url", c.PublicURL); err != nil {
		return err
	}
	if c.TemporalUIURL != "" {
		if err := checkURL("--temporal-ui-url", c.TemporalUIURL); err != nil {
			return err
		}
	}
	return checkPositive("--shutdown-timeout", c.ShutdownTimeout)
}

func (c *apiConfig) trustedProxies() []string {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// staffAddConfig configures `onesync staff add`.
type staffAddConfig struct {
	Store         string
	Email         string
	Name          string
	PasswordStdin bool
	Log           logConfig
}

func (c *staffAddConfig) register(f *flags) {
	registerStore(f, &c.Store)
	f.fs.StringVar(&c.Email, "email", "", "the staff member's email, used to log in (required)")
	f.fs.StringVar(&c.Name, "name", "", "the staff member's name as pages show it")
	f.fs.BoolVar(&c.PasswordStdin, "password-stdin", false,
		"read the password from the first line of standard input; "+
			"otherwise one is generated and printed once")
	c.Log.register(f, logging.ModeConsole)
}

func (c *staffAddConfig) validate() error {
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := checkStoreDSN(c.Store); err != nil {
		return err
	}
	email := strings.TrimSpace(c.Email)
	at := strings.LastIndex(email, "@")
	if email == "" {
		return configErrorf("--email is required")
	}
	if at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t<>") {
		return configErrorf("--email %q is not an email address", c.Email)
	}
	c.Email = email
	c.Name = strings.TrimSpace(c.Name)
	return nil
}

func registerStore(f *flags, dst *string) {
	f.fs.StringVar(dst, "store", "",
		"OneSync's database: sqlite:<path> or postgres://user@host/db (required)")
	f.dsn("store")
}

func checkStoreDSN(dsn string) error {
	switch {
	case dsn == "":
		return configErrorf("--store is required (sqlite:<path> or postgres://...)")
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return configErrorf("--store sqlite: needs a file path")
		}
		return nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return nil
	}
	return configErrorf("--store %q: want sqlite:<path> or postgres://...", redactDSN(dsn))
}

func checkHostPort(flagName, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return configErrorf("%s %q: want host:port: %w", flagName, addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return configErrorf("%s %q: port must be a number from 0 to 65535", flagName, addr)
	}
	return nil
}

// checkLoopbackAddr refuses a dev address that other machines could reach.
func checkLoopbackAddr(flagName, addr string) error {
	if err := checkHostPort(flagName, addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return configErrorf("%s %q: onesync dev listens on loopback only (127.0.0.1)",
			flagName, addr)
	}
	return nil
}

func checkPort(flagName string, port int) error {
	if port < 0 || port > 65535 {
		return configErrorf("%s %d: port must be from 0 to 65535 (0 picks a free one)",
			flagName, port)
	}
	return nil
}

func checkPositive(flagName string, d time.Duration) error {
	if d <= 0 {
		return configErrorf("%s must be positive, not %s", flagName, d)
	}
	return nil
}

func checkURL(flagName, raw string) error {
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return configErrorf("%s %q: want an http:// or https:// address", flagName, raw)
	}
	return nil
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkWritableDir creates dir if needed and proves it can be written by
// writing and removing a file, so that a read-only folder fails at start
// with its name rather than later inside the Temporal server.
func checkWritableDir(flagName, dir string) error {
	if strings.TrimSpace(dir) == "" {
		return configErrorf("%s is empty", flagName)
	}
	if strings.ContainsAny(dir, "?#") {
		return configErrorf("%s %q must not contain ? or #", flagName, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return configErrorf("%s %q cannot be created: %w", flagName, dir, unwrapPath(err))
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return configErrorf("%s %q is not writable: %w", flagName, dir, unwrapPath(err))
	}
	name := probe.Name()
	_ = probe.Close()
	if err := os.Remove(name); err != nil {
		return configErrorf("%s %q: remove %s: %w", flagName, dir, filepath.Base(name), err)
	}
	return nil
}

// unwrapPath drops the *PathError's repetition of the path the message
// already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (c *devConfig) logSettings() logConfig { return c.Log }

func (c *workerConfig) logSettings() logConfig { return c.Log }

func (c *apiConfig) logSettings() logConfig { return c.Log }

func (c *staffAddConfig) logSettings() logConfig { return c.Log }
