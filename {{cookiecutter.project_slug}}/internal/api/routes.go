// Package api is the service's HTTP API: probes, version and, when the
// service has a worker, the job endpoints.
package api

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
	"{{ cookiecutter.module_path }}/internal/health"
{%- if cookiecutter.profile == "api-worker" %}
	"{{ cookiecutter.module_path }}/internal/jobs"
{%- endif %}
	"{{ cookiecutter.module_path }}/internal/web"
)

// Config is what the API's handlers depend on.
type Config struct {
	Log          *slog.Logger
	Metrics      prometheus.Registerer
	Tracer       trace.Tracer // nil when tracing is off
	Probe        *health.Probe
	MaxBodyBytes int64
{%- if cookiecutter.profile == "api-worker" %}

	Queue jobs.Queue
	Jobs  *jobs.Registry // the job types that POST /v1/jobs accepts
{%- endif %}
}

// NewHandler returns the API with every route registered. All routes share
// the router's request ids, recovery, access log, metrics and tracing.
func NewHandler(cfg Config) http.Handler {
	rt := web.NewRouter(cfg.Log, cfg.Metrics, cfg.Tracer)

	rt.HandleProbe("GET /health", cfg.Probe.Liveness())
	rt.HandleProbe("GET /ready", cfg.Probe.Readiness())
	rt.HandleProbe("GET /startup", cfg.Probe.Startup())
	rt.Handle("GET /version", versionHandler(buildinfo.Get()))
{%- if cookiecutter.profile == "api-worker" %}

	rt.Handle("POST /v1/jobs", createJob(cfg.Queue, cfg.Jobs, cfg.MaxBodyBytes, cfg.Log))
	rt.Handle("GET /v1/jobs/{id}", getJob(cfg.Queue, cfg.Log))
{%- endif %}

	return rt
}

// versionHandler serves the build stamp of the running binary.
func versionHandler(info buildinfo.Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		web.WriteJSON(w, http.StatusOK, info)
	})
}
