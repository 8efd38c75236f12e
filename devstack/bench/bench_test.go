package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// BenchmarkSyncTenants runs a scaled-down benchmark: 20 tenants of 50
// users and one of 1,300 (two presence requests per poll), presences
// changing for 20 s. It reports the p99 delay and the presence requests
// per tenant per interval as metrics, so that
//
//	go test -run '^$' -bench SyncTenants -benchtime 1x ./devstack/bench/
//
// shows them. Each iteration is one whole run of about a minute; the
// figures depend on the machine's load and are never asserted.
func BenchmarkSyncTenants(b *testing.B) {
	c := Config{
		Tenants: 20, Users: 50, BigUsers: 1300,
		Duration: 20 * time.Second, Interval: DefaultInterval,
		ChangeRate: 10, Seed: 1,
		Logger: zaptest.NewLogger(b, zaptest.Level(zap.ErrorLevel)),
	}
	if testing.Verbose() {
		c.Progress = os.Stderr
	}

	var last Report
	for b.Loop() {
		rep, err := Run(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		last = rep
	}

	b.ReportMetric(last.Delay.P99.Seconds()*1000, "p99-ms")
	b.ReportMetric(last.BigDelay.P99.Seconds()*1000, "big-p99-ms")
	b.ReportMetric(float64(last.Delay.Lost), "lost")
	b.ReportMetric(last.Requests.Mean, "req/interval")
	b.ReportMetric(last.Requests.Big, "big-req/interval")
	b.ReportMetric(float64(last.Pushes.Unchanged), "unchanged-pushes")
	b.ReportMetric(last.Process.CPU, "cpu-cores")
	// The default ns/op is one whole run, set-up included: not a figure
	// of the product.
	b.ReportMetric(0, "ns/op")
}
