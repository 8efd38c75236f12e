// Package temporaldevtest starts the embedded Temporal server for a test:
// a SQLite file in the test's temporary folder, free loopback ports, no UI
// unless asked, and a stop when the test ends.
package temporaldevtest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/setera/onesync/devstack/temporaldev"
	"github.com/setera/onesync/logging"
)

// Start runs a server for t with opts, filling in a temporary data folder
// (unless InMemory), free ports and a logger that writes to the test log.
// It fails the test if the server does not start.
func Start(t testing.TB, opts temporaldev.Options) *temporaldev.Server {
	t.Helper()
	if opts.DataDir == "" && !opts.InMemory {
		opts.DataDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := temporaldev.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start embedded temporal: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop embedded temporal: %v", err)
		}
	})
	return srv
}

// Client dials srv for t and closes the client when the test ends.
func Client(t testing.TB, srv *temporaldev.Server) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := srv.NewClient(ctx, client.Options{Logger: logging.NewSDKLogger(Logger(t))})
	if err != nil {
		t.Fatalf("dial embedded temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Logger returns a zap logger that writes to t's log until the test's
// cleanups have run. Lines that the server's or the SDK's goroutines write
// later are dropped instead of making the testing package panic.
func Logger(t testing.TB) *zap.Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs after every other cleanup

	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zapcore.DebugLevel)
	return zap.New(core)
}

type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
