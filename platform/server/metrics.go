package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is a per-app registry, so tests can build many apps in one process.
type metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
	// series caches each labelled histogram: the vector would hash and look up its three
	// labels (and format the status) on every request. The set is bounded like the labels
	// themselves: route patterns, methods and statuses.
	series sync.Map // seriesKey -> prometheus.Observer
}

type seriesKey struct {
	route, method string
	status        int
}

func newMetrics(service string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "http_request_duration_seconds",
		Help:        "Latency of HTTP requests by route pattern, method and status.",
		ConstLabels: prometheus.Labels{"service": service},
		Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "status"})
	reg.MustRegister(d)
	return &metrics{reg: reg, duration: d}
}

// observe records one request. route and method must be strings the program owns (a route
// pattern from the route table, a label from methodLabel), never views into a request: the
// cache keeps them as map keys for the life of the process.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route, method, status}
	o, ok := m.series.Load(k)
	if !ok {
		o, _ = m.series.LoadOrStore(k, m.duration.WithLabelValues(route, method, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}
