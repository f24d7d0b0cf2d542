package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ProjectorLag is how far one projector is behind the head of the log.
type ProjectorLag struct {
	Name   string
	Events float64 // events not yet applied (an estimate where positions are not dense)
}

// LagSource reports every projector's lag; the projection runner implements
// it (or the caller adapts it with LagFunc).
type LagSource interface {
	Lags(ctx context.Context) []ProjectorLag
}

// LagFunc adapts a function to LagSource.
type LagFunc func(ctx context.Context) []ProjectorLag

// Lags calls f.
func (f LagFunc) Lags(ctx context.Context) []ProjectorLag { return f(ctx) }

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	appends  *prometheus.HistogramVec
}

func newMetrics(lags LagSource) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledger_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		appends: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledger_append_duration_seconds",
			Help:    "Time to decide a command and durably append its events, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.requests, m.appends,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if lags != nil {
		m.reg.MustRegister(&lagCollector{src: lags})
	}
	return m
}

func (m *metrics) observeAppend(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = string(toAPIError(err).Code)
	}
	m.appends.WithLabelValues(outcome).Observe(d.Seconds())
}

var lagDesc = prometheus.NewDesc("ledger_projection_lag_events",
	"Events in the log that a projector has not applied yet.", []string{"projector"}, nil)

// lagCollector asks the LagSource at scrape time.
type lagCollector struct{ src LagSource }

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range c.src.Lags(ctx) {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, l.Events, l.Name)
	}
}
