package worker

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// PrometheusMetrics returns a Temporal SDK metrics handler that records the
// SDK's own metrics (workflow and activity task latencies, poll counts,
// sticky cache, request failures) in reg, so that they are served on
// /metrics with OneSync's. A metric keeps the label names it was first
// used with: a later use with other tags has the missing labels empty and
// the extra ones dropped, as Prometheus wants one label set per metric.
func PrometheusMetrics(reg prometheus.Registerer) client.MetricsHandler {
	return &promHandler{r: &promRegistry{reg: reg, vecs: map[string]*promVec{}}}
}

type promHandler struct {
	r    *promRegistry
	tags map[string]string
}

func (h *promHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &promHandler{r: h.r, tags: merged}
}

func (h *promHandler) Counter(name string) client.MetricsCounter {
	v := h.r.vec(name, kindCounter, h.tags)
	if v == nil {
		return nopMetric{}
	}
	c := v.counter.With(v.labels(h.tags))
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

func (h *promHandler) Gauge(name string) client.MetricsGauge {
	v := h.r.vec(name, kindGauge, h.tags)
	if v == nil {
		return nopMetric{}
	}
	g := v.gauge.With(v.labels(h.tags))
	return gaugeFunc(g.Set)
}

func (h *promHandler) Timer(name string) client.MetricsTimer {
	v := h.r.vec(name, kindTimer, h.tags)
	if v == nil {
		return nopMetric{}
	}
	o := v.timer.With(v.labels(h.tags))
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type metricKind int

const (
	kindCounter metricKind = iota
	kindGauge
	kindTimer
)

// promRegistry creates each metric once, on first use, with the label
// names of that use.
type promRegistry struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	vecs map[string]*promVec
}

type promVec struct {
	kind    metricKind
	keys    []string
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	timer   *prometheus.HistogramVec
}

// vec returns the metric of that name, or nil when it cannot be recorded
// (the name is used with another kind, or registration failed).
func (r *promRegistry) vec(name string, kind metricKind, tags map[string]string) *promVec {
	name = promName(name)
	r.mu.Lock()
	defer r.mu.Unlock()

	if v, ok := r.vecs[name]; ok {
		if v.kind != kind {
			return nil
		}
		return v
	}

	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, promName(k))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	help := "Temporal SDK metric " + name + "."

	v := &promVec{kind: kind, keys: keys}
	var c prometheus.Collector
	switch kind {
	case kindCounter:
		v.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, keys)
		c = v.counter
	case kindGauge:
		v.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, keys)
		c = v.gauge
	case kindTimer:
		v.timer = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name + "_seconds", Help: help, Buckets: prometheus.DefBuckets,
		}, keys)
		c = v.timer
	}
	if err := r.reg.Register(c); err != nil {
		r.vecs[name] = &promVec{kind: -1}
		return nil
	}
	r.vecs[name] = v
	return v
}

// labels maps tags onto the metric's fixed label names.
func (v *promVec) labels(tags map[string]string) prometheus.Labels {
	l := make(prometheus.Labels, len(v.keys))
	for _, k := range v.keys {
		l[k] = ""
	}
	for k, val := range tags {
		if k = promName(k); slices.Contains(v.keys, k) {
			l[k] = val
		}
	}
	return l
}

// promName makes a metric or label name Prometheus accepts.
func promName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, s)
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

type nopMetric struct{}

func (nopMetric) Inc(int64)            {}
func (nopMetric) Update(float64)       {}
func (nopMetric) Record(time.Duration) {}
