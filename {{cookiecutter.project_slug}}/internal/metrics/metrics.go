// Package metrics builds the Prometheus registry that every component
// exposes on METRICS_PORT.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
)

// NewRegistry returns a registry with the Go runtime and process collectors
// and the build_info gauge. A private registry, unlike the global default,
// exposes only what this service registers, including in tests.
func NewRegistry(info buildinfo.Info) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "build_info",
		Help: "Always 1; the labels identify the running build.",
	}, []string{"version", "commit", "build_date", "go_version"})
	build.WithLabelValues(info.Version, info.Commit, info.BuildDate, info.GoVersion).Set(1)
	reg.MustRegister(build)

	return reg
}

// Handler serves the registry in the Prometheus text or OpenMetrics format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg, // counts the handler's own errors
		EnableOpenMetrics: true,
	})
}
