package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	processed    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	byType := []string{"type"}
	return &metrics{
		processed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_processed_total",
			Help: "Job attempts that ran to an end, successful or not.",
		}, byType),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_failed_total",
			Help: "Job attempts that returned an error, panicked or timed out.",
		}, byType),
		retried: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_retried_total",
			Help: "Failed job attempts that were queued again.",
		}, byType),
		deadLettered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_dead_lettered_total",
			Help: "Jobs moved to the dead-letter queue: attempts used up, or type unknown (type=\"unknown\").",
		}, byType),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "job_duration_seconds",
			Help:    "Run time of one job attempt.",
			Buckets: []float64{.005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, byType),
	}
}

func (m *metrics) observe(jobType string, elapsed time.Duration, err error) {
	m.processed.WithLabelValues(jobType).Inc()
	m.duration.WithLabelValues(jobType).Observe(elapsed.Seconds())
	if err != nil {
		m.failed.WithLabelValues(jobType).Inc()
	}
}
