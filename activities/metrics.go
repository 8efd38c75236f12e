package activities

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// Metrics are the activities' Prometheus metrics: what an operator watches
// to see that presence flows. A nil *Metrics records nothing, so that
// tests and tools need not create one.
type Metrics struct {
	// Pushes counts line states accepted by the PBX, by state.
	Pushes *prometheus.CounterVec
	// PushErrors counts pushes the PBX refused or that failed, by kind.
	PushErrors *prometheus.CounterVec
	// GraphRequests counts presence requests to Graph by outcome: ok or a
	// graph.Class (throttled, transient, revoked, ...).
	GraphRequests *prometheus.CounterVec
	// PushLatency is the time one push to the PBX takes, retries included.
	PushLatency prometheus.Histogram
	// TenantsSyncing is the number of SyncPresence windows running.
	TenantsSyncing prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// leaves them unregistered (useful in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "onesync", Name: "presence_changes_pushed_total",
			Help: "Line state changes accepted by the PBX, by line state.",
		}, []string{"state"}),
		PushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "onesync", Name: "presence_push_errors_total",
			Help: "Pushes to the PBX that did not apply, by kind (stale, not_found, error).",
		}, []string{"kind"}),
		GraphRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "onesync", Name: "graph_presence_requests_total",
			Help: "Presence requests to Microsoft Graph, by outcome.",
		}, []string{"outcome"}),
		PushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "onesync", Name: "pbx_push_duration_seconds",
			Help:    "Time one line state push to the PBX takes.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		TenantsSyncing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "onesync", Name: "tenants_syncing",
			Help: "Tenants with a presence sync window running in this worker.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.Pushes, m.PushErrors, m.GraphRequests, m.PushLatency, m.TenantsSyncing,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register activity metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) syncing(delta float64) {
	if m == nil {
		return
	}
	m.TenantsSyncing.Add(delta)
}

func (m *Metrics) graphOutcome(outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if outcome == "" {
		outcome = "unknown"
	}
	m.GraphRequests.WithLabelValues(outcome).Add(float64(n))
}

func (m *Metrics) pushed(took time.Duration, state presence.LineState, err error) {
	if m == nil {
		return
	}
	m.PushLatency.Observe(took.Seconds())
	switch {
	case err == nil:
		m.Pushes.WithLabelValues(string(state)).Inc()
	case errors.Is(err, pbx.ErrStale):
		m.PushErrors.WithLabelValues("stale").Inc()
	case errors.Is(err, pbx.ErrExtensionNotFound):
		m.PushErrors.WithLabelValues("not_found").Inc()
	default:
		m.PushErrors.WithLabelValues("error").Inc()
	}
}
