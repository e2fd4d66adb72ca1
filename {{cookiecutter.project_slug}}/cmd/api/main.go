// Command api serves the service's HTTP API on PORT and its metrics on
// METRICS_PORT.
{%- if cookiecutter.profile == "api-worker" %}
// Without REDIS_URL it also runs the job worker in-process, on an in-memory
// queue.
{%- endif %}
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"{{ cookiecutter.module_path }}/internal/api"
	"{{ cookiecutter.module_path }}/internal/buildinfo"
	"{{ cookiecutter.module_path }}/internal/cli"
	"{{ cookiecutter.module_path }}/internal/config"
	"{{ cookiecutter.module_path }}/internal/health"
	"{{ cookiecutter.module_path }}/internal/logging"
	"{{ cookiecutter.module_path }}/internal/metrics"
	"{{ cookiecutter.module_path }}/internal/telemetry"
	"{{ cookiecutter.module_path }}/internal/web"
)

// serviceName names the service in logs and, unless OTEL_SERVICE_NAME is
// set, in traces.
const serviceName = {{ cookiecutter.project_slug | tojson }}

// summary is the first line of the -help text.
const summary = "api serves the HTTP API on PORT and Prometheus metrics on METRICS_PORT."

func main() {
	if exit, code := cli.ParseArgs("api", summary, os.Args[1:], os.Stdout, os.Stderr); exit {
		os.Exit(code)
	}
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		logging.Exit(os.Stdout, os.Stderr, serviceName, "api", err)
		os.Exit(1)
	}
}

// run starts the API and blocks until ctx ends or SIGINT or SIGTERM
// arrives, then drains and returns. It returns an error when start-up
// fails, a server fails, or the drain does not finish in time.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// -------------------------------------------------------------------------
	// Configuration and logging

	cfg, httpCfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := logging.New(stdout, cfg.LogLevel, serviceName, "api")
	info := buildinfo.Get()
	log.Info("startup", "commit", info.Commit, "build_date", info.BuildDate, "go_version", info.GoVersion)

	// -------------------------------------------------------------------------
	// Tracing and metrics

	tracer, flushTracing, err := telemetry.Setup(ctx, cfg.Tracing, serviceName+"-api")
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	reg := metrics.NewRegistry(info)
	probe := health.New(log)
	a := &app{log: log, cfg: cfg, http: httpCfg, probe: probe, flushTracing: flushTracing}
{%- if cookiecutter.profile == "api-worker" %}

	// -------------------------------------------------------------------------
	// Job queue, and the worker when it runs in-process

	queue, err := a.startQueue(ctx, getenv, reg)
	if err != nil {
		return err
	}
{%- endif %}

	// -------------------------------------------------------------------------
	// Start the API and metrics servers

	handler := api.NewHandler(api.Config{
		Log:          log,
		Metrics:      reg,
		Tracer:       tracer,
		Probe:        probe,
		MaxBodyBytes: httpCfg.MaxBodyBytes,
{%- if cookiecutter.profile == "api-worker" %}
		Queue:        queue.queue,
		Jobs:         queue.handlers,
{%- endif %}
	})
	serverErrors, err := a.startServers(ctx, handler, metricsHandler(reg))
	if err != nil {
		return err
	}
	// Start-up ends once both listeners serve. Dependencies are not waited
	// for: while the queue is unreachable /ready returns 503 and /startup 200.
	probe.MarkStarted()
	log.Info("started", "port", a.apiAddr.Port, "metrics_port", a.metricsAddr.Port)

	// -------------------------------------------------------------------------
	// Wait for a signal or a server failure, then shut down

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutdown signal received")
	case serveErr = <-serverErrors:
		log.Error("server failed", "error", serveErr)
	}
	// From here on a second SIGINT or SIGTERM ends the process at once.
	stopSignals()
	return errors.Join(serveErr, a.shutdown())
}

// loadConfig reads the shared and the HTTP settings and reports every
// invalid variable at once.
func loadConfig(getenv func(string) string) (config.Config, config.HTTP, error) {
	cfg, err := config.Load(getenv)
	httpCfg, herr := config.LoadHTTP(getenv)
	if err = errors.Join(err, herr); err != nil {
		return cfg, httpCfg, fmt.Errorf("loading config: %w", err)
	}
	if httpCfg.Port != 0 && httpCfg.Port == cfg.MetricsPort {
		return cfg, httpCfg, fmt.Errorf("loading config: PORT and METRICS_PORT are both %d; want two ports", httpCfg.Port)
	}
	return cfg, httpCfg, nil
}

// metricsHandler serves GET and HEAD /metrics and responds to anything else
// with a JSON 404 or 405.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	return web.JSONErrors(mux)
}

// app holds what shutdown needs to stop.
type app struct {
	log          *slog.Logger
	cfg          config.Config
	http         config.HTTP
	probe        *health.Probe
	flushTracing telemetry.Shutdown

	api, metrics         *http.Server
	apiAddr, metricsAddr *net.TCPAddr
{%- if cookiecutter.profile == "api-worker" %}

	stopWorker func(context.Context) error // nil when the worker runs elsewhere
	closeQueue func() error
{%- endif %}
}

// startServers listens on both ports before serving either, so that a busy
// port fails start-up instead of leaving a half-started process.
func (a *app) startServers(ctx context.Context, handler, metricsHandler http.Handler) (<-chan error, error) {
	timeouts := web.Timeouts{
		ReadHeader: a.http.ReadHeaderTimeout,
		Read:       a.http.ReadTimeout,
		Write:      a.http.WriteTimeout,
		Idle:       a.http.IdleTimeout,
	}
	apiLn, err := web.Listen(ctx, a.http.Port)
	if err != nil {
		return nil, err
	}
	metricsLn, err := web.Listen(ctx, a.cfg.MetricsPort)
	if err != nil {
		_ = apiLn.Close()
		return nil, err
	}
	a.apiAddr = apiLn.Addr().(*net.TCPAddr)
	a.metricsAddr = metricsLn.Addr().(*net.TCPAddr)
	a.api = web.NewServer(handler, timeouts, a.log)
	a.metrics = web.NewServer(metricsHandler, timeouts, a.log)

	errs := make(chan error, 2)
	go func() { errs <- web.Serve(a.api, apiLn) }()
	go func() { errs <- web.Serve(a.metrics, metricsLn) }()
	return errs, nil
}

// shutdown drains in the order that loses the least work: readiness fails
// first so that load balancers stop routing here, then the API stops taking
// requests, then the worker finishes its jobs, and the metrics server goes
// last so that the drain can still be scraped.
func (a *app) shutdown() error {
	a.probe.MarkDraining()
	a.log.Info("shutdown started", "delay", a.cfg.ShutdownDelay, "timeout", a.cfg.ShutdownTimeout)
	time.Sleep(a.cfg.ShutdownDelay)

	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()

	a.log.Info("shutdown draining http")
	errs := []error{stopServer(ctx, a.api, "api")}
{%- if cookiecutter.profile == "api-worker" %}
	if a.stopWorker != nil {
		a.log.Info("shutdown stopping worker")
		errs = append(errs, a.stopWorker(ctx))
	}
	if err := a.closeQueue(); err != nil {
		errs = append(errs, fmt.Errorf("closing queue: %w", err))
	}
{%- endif %}
	errs = append(errs, stopServer(ctx, a.metrics, "metrics"))

	a.log.Info("shutdown flushing traces")
	if err := a.flushTracing(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing traces: %w", err))
	}

	err := errors.Join(errs...)
	if err != nil {
		// main logs the error at ERROR as the process exits.
		a.log.Warn("shutdown incomplete", "error", err)
		return err
	}
	a.log.Info("shutdown complete")
	return nil
}

// stopServer drains srv and, when ctx ends first, closes its remaining
// connections.
func stopServer(ctx context.Context, srv *http.Server, name string) error {
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("draining %s server: %w", name, err)
	}
	return nil
}
