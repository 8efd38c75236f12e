package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/setera/onesync/logging"
)

// DefaultDialTimeout bounds Dial when ClientConfig leaves it zero.
const DefaultDialTimeout = 5 * time.Second

// ClientConfig says how to reach a Temporal cluster. `onesync worker` and
// `onesync api` fill it from their flags; `onesync dev` points it at the
// embedded server.
type ClientConfig struct {
	Address   string // host:port of the frontend
	Namespace string

	// TLS: CertFile and KeyFile together give a client certificate (mTLS);
	// CAFile replaces the system roots; ServerName overrides the name the
	// server certificate is checked against. TLS turns TLS on without a
	// client certificate.
	TLS        bool
	CertFile   string
	KeyFile    string
	CAFile     string
	ServerName string

	// APIKey authenticates to Temporal Cloud; it turns TLS on. It is never
	// logged.
	APIKey string

	// DialTimeout bounds the first connection and health check, so that a
	// wrong address fails at start instead of hanging.
	DialTimeout time.Duration

	// Logger receives the SDK's lines through the zap bridge.
	Logger *zap.Logger

	// MetricsHandler receives the SDK's metrics (client, worker, workflow
	// and activity). nil drops them. This is the hook for the Prometheus
	// handler that a later change adds.
	MetricsHandler client.MetricsHandler
}

// Dial connects to Temporal and checks that it answers within the dial
// timeout. The error is one line that names the address.
func Dial(ctx context.Context, cfg ClientConfig) (client.Client, error) {
	opts, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}

	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s (namespace %s) is unreachable after %s: %w",
			cfg.Address, cfg.Namespace, timeout, oneLine(err))
	}
	if _, err := c.CheckHealth(dctx, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("temporal at %s is not healthy: %w", cfg.Address, oneLine(err))
	}
	return c, nil
}

func (cfg ClientConfig) clientOptions() (client.Options, error) {
	if cfg.Address == "" {
		return client.Options{}, errors.New("temporal address is empty")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}

	opts := client.Options{
		HostPort:       cfg.Address,
		Namespace:      cfg.Namespace,
		Logger:         logging.NewSDKLogger(logger),
		MetricsHandler: cfg.MetricsHandler,
	}

	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return client.Options{}, err
	}
	opts.ConnectionOptions.TLS = tlsCfg
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	}
	return opts, nil
}

// tlsConfig returns nil when no TLS option is set.
func (cfg ClientConfig) tlsConfig() (*tls.Config, error) {
	if !cfg.TLS && cfg.CertFile == "" && cfg.KeyFile == "" && cfg.CAFile == "" &&
		cfg.ServerName == "" {
		return nil, nil
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("temporal TLS: client certificate and key must be given together")
	}

	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal TLS: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal TLS: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal TLS: no PEM certificate in %s", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// oneLine keeps gRPC's multi-line errors on one line for the start error.
func oneLine(err error) error {
	if !strings.Contains(err.Error(), "\n") {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}
