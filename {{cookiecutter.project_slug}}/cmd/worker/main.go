// Command worker runs jobs from the Redis queue that the API fills. It
// serves /health, /ready, /startup and /metrics on METRICS_PORT.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
	"{{ cookiecutter.module_path }}/internal/cli"
	"{{ cookiecutter.module_path }}/internal/config"
	"{{ cookiecutter.module_path }}/internal/health"
	"{{ cookiecutter.module_path }}/internal/jobs"
	"{{ cookiecutter.module_path }}/internal/logging"
	"{{ cookiecutter.module_path }}/internal/metrics"
	"{{ cookiecutter.module_path }}/internal/queue/redisqueue"
	"{{ cookiecutter.module_path }}/internal/telemetry"
	"{{ cookiecutter.module_path }}/internal/web"
	"{{ cookiecutter.module_path }}/internal/worker"
)

// serviceName names the service in logs and, unless OTEL_SERVICE_NAME is
// set, in traces.
const serviceName = {{ cookiecutter.project_slug | tojson }}

// summary is the first line of the -help text.
const summary = "worker runs jobs from the Redis queue in REDIS_URL and serves its probes and\n" +
	"Prometheus metrics on METRICS_PORT."

func main() {
	if exit, code := cli.ParseArgs("worker", summary, os.Args[1:], os.Stdout, os.Stderr); exit {
		os.Exit(code)
	}
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		logging.Exit(os.Stdout, os.Stderr, serviceName, "worker", err)
		os.Exit(1)
	}
}

// run starts the worker and blocks until ctx ends or SIGINT or SIGTERM
// arrives, then finishes in-flight jobs and returns.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// -------------------------------------------------------------------------
	// Configuration and logging

	cfg, qcfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := logging.New(stdout, cfg.LogLevel, serviceName, "worker")
	info := buildinfo.Get()
	log.Info("startup", "commit", info.Commit, "build_date", info.BuildDate, "go_version", info.GoVersion)

	// -------------------------------------------------------------------------
	// Tracing and metrics

	_, flushTracing, err := telemetry.Setup(ctx, cfg.Tracing, serviceName+"-worker")
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	reg := metrics.NewRegistry(info)
	probe := health.New(log)

	// -------------------------------------------------------------------------
	// Queue and worker

	// New does not wait for Redis: while it is unreachable the worker
	// starts, /ready returns 503 and the fetch loops retry with backoff.
	redisqueue.RouteClientLogs(log)
	q, err := redisqueue.New(redisqueue.Options{
		URL:       qcfg.RedisURL,
		Name:      qcfg.Name,
		ClaimIdle: qcfg.ClaimIdle,
		Logger:    log,
	})
	if err != nil {
		return fmt.Errorf("setting up redis queue: %w", err)
	}
	probe.AddCheck("queue", q.Ping)
	w := worker.New(q, jobs.Handlers(log, reg), workerConfig(qcfg), log, reg)

	// -------------------------------------------------------------------------
	// Start the probe and metrics server, then the worker

	srv, serverErrors, err := startServer(ctx, cfg, log, probe, reg)
	if err != nil {
		_ = q.Close()
		return err
	}
	w.Start(ctx)
	// Start-up ends once the probe server listens; /ready, not /startup,
	// reports whether Redis is reachable.
	probe.MarkStarted()
	log.Info("started", "metrics_port", cfg.MetricsPort, "queue", qcfg.Name)

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

	d := drain{log: log, cfg: cfg, probe: probe, worker: w, queue: q, server: srv, flushTracing: flushTracing}
	return errors.Join(serveErr, d.run())
}

// loadConfig reads both groups of settings and insists on REDIS_URL: a
// worker process has no queue of its own to fall back to.
func loadConfig(getenv func(string) string) (config.Config, config.Queue, error) {
	cfg, err := config.Load(getenv)
	qcfg, qerr := config.LoadQueue(getenv)
	if err = errors.Join(err, qerr); err != nil {
		return cfg, qcfg, fmt.Errorf("loading config: %w", err)
	}
	if qcfg.RedisURL == "" {
		return cfg, qcfg, errors.New("loading config: REDIS_URL is required; " +
			"set it to the Redis that the API enqueues to, such as redis://redis:6379/0")
	}
	return cfg, qcfg, nil
}

// probeTimeouts bound the probe server's connections. They are fixed rather
// than read from the API's READ_TIMEOUT and friends: the kubelet and
// Prometheus send small requests and read small responses.
var probeTimeouts = web.Timeouts{
	ReadHeader: 5 * time.Second,
	Read:       15 * time.Second,
	Write:      15 * time.Second,
	Idle:       60 * time.Second,
}

// startServer serves the probes and /metrics on METRICS_PORT. The kubelet
// and Prometheus are its only clients, so it skips the API's access log.
func startServer(ctx context.Context, cfg config.Config, log *slog.Logger, probe *health.Probe, reg *prometheus.Registry) (*http.Server, <-chan error, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /health", probe.Liveness())
	mux.Handle("GET /ready", probe.Readiness())
	mux.Handle("GET /startup", probe.Startup())
	mux.Handle("GET /metrics", metrics.Handler(reg))

	ln, err := web.Listen(ctx, cfg.MetricsPort)
	if err != nil {
		return nil, nil, err
	}
	srv := web.NewServer(web.JSONErrors(mux), probeTimeouts, log)
	errs := make(chan error, 1)
	go func() { errs <- web.Serve(srv, ln) }()
	return srv, errs, nil
}

// drain is the shutdown sequence: readiness fails first, then the worker
// stops fetching and finishes in-flight jobs within SHUTDOWN_TIMEOUT, and
// the probe server goes last so that the drain can still be scraped.
type drain struct {
	log          *slog.Logger
	cfg          config.Config
	probe        *health.Probe
	worker       *worker.Worker
	queue        *redisqueue.Queue
	server       *http.Server
	flushTracing telemetry.Shutdown
}

func (d drain) run() error {
	d.probe.MarkDraining()
	d.log.Info("shutdown started", "delay", d.cfg.ShutdownDelay, "timeout", d.cfg.ShutdownTimeout)
	time.Sleep(d.cfg.ShutdownDelay)

	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()

	d.log.Info("shutdown stopping worker")
	errs := []error{d.worker.Shutdown(ctx)}
	if err := d.queue.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing queue: %w", err))
	}
	if err := d.server.Shutdown(ctx); err != nil {
		_ = d.server.Close()
		errs = append(errs, fmt.Errorf("draining probe server: %w", err))
	}
	d.log.Info("shutdown flushing traces")
	if err := d.flushTracing(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing traces: %w", err))
	}

	err := errors.Join(errs...)
	if err != nil {
		// main logs the error at ERROR as the process exits.
		d.log.Warn("shutdown incomplete", "error", err)
		return err
	}
	d.log.Info("shutdown complete")
	return nil
}

func workerConfig(q config.Queue) worker.Config {
	return worker.Config{
		Concurrency:  q.Concurrency,
		MaxAttempts:  q.MaxAttempts,
		JobTimeout:   q.JobTimeout,
		RetryBackoff: q.RetryBackoff,
	}
}
