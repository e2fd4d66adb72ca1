package web

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	f := promauto.With(reg)
	labels := []string{"method", "route", "code"}
	return &httpMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, labels),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to the handler's return.",
			Buckets: prometheus.DefBuckets,
		}, labels),
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
}

// series is the counter and histogram of one method, route and code.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// codeCache holds a route's series by status code, filled on first use, so
// that the common case skips the label hashing of WithLabelValues.
type codeCache [600]atomic.Pointer[series]

func (m *httpMetrics) observe(rt *route, method string, code int, elapsed time.Duration) {
	var s *series
	// The cache is only valid for the route's own method; HEAD requests to a
	// GET route and unmatched requests take the slow path.
	if rt.method != "" && method == rt.method && code >= 100 && code < len(rt.codes) {
		s = rt.codes[code].Load()
		if s == nil {
			s = m.series(method, rt.path, code)
			rt.codes[code].Store(s)
		}
	} else {
		s = m.series(labelMethod(method), rt.path, code)
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (m *httpMetrics) series(method, path string, code int) *series {
	c := strconv.Itoa(code)
	return &series{
		requests: m.requests.WithLabelValues(method, path, c),
		duration: m.duration.WithLabelValues(method, path, c),
	}
}

// labelMethod maps methods outside RFC 9110 to OTHER, because the method of
// an unmatched request is whatever the client sent.
func labelMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "OTHER"
}
