package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"{{ cookiecutter.module_path }}/internal/config"
	"{{ cookiecutter.module_path }}/internal/jobs"
	"{{ cookiecutter.module_path }}/internal/queue/memory"
	"{{ cookiecutter.module_path }}/internal/queue/redisqueue"
	"{{ cookiecutter.module_path }}/internal/worker"
)

// jobQueue is the queue the API enqueues to and the job types it accepts.
type jobQueue struct {
	queue    jobs.Queue
	handlers *jobs.Registry
}

// startQueue connects to Redis when REDIS_URL is set; the API then only
// enqueues and cmd/worker runs the jobs. Without REDIS_URL it runs an
// in-memory queue and the worker in this process.
func (a *app) startQueue(ctx context.Context, getenv func(string) string, reg *prometheus.Registry) (jobQueue, error) {
	qcfg, err := config.LoadQueue(getenv)
	if err != nil {
		return jobQueue{}, fmt.Errorf("loading config: %w", err)
	}
	if qcfg.RedisURL != "" {
		return a.connectRedis(qcfg)
	}

	a.log.Warn("REDIS_URL is unset: running the worker in-process on an in-memory queue; "+
		"queued jobs do not survive a restart", "concurrency", qcfg.Concurrency)
	q := memory.New()
	handlers := jobs.Handlers(a.log, reg)
	wcfg := workerConfig(qcfg)
	wcfg.InMemory = true
	w := worker.New(q, handlers, wcfg, a.log, reg)
	w.Start(ctx)
	a.stopWorker = w.Shutdown
	a.closeQueue = func() error {
		if n := q.Unfinished(); n > 0 {
			a.log.Warn("in-memory queue discarded with unfinished jobs", "jobs", n)
		}
		return nil
	}
	return jobQueue{queue: q, handlers: handlers}, nil
}

// connectRedis builds the Redis queue without waiting for Redis: while it is
// unreachable the API starts and serves, /ready answers 503 and POST
// /v1/jobs answers 503.
func (a *app) connectRedis(qcfg config.Queue) (jobQueue, error) {
	redisqueue.RouteClientLogs(a.log)
	q, err := redisqueue.New(redisqueue.Options{
		URL:       qcfg.RedisURL,
		Name:      qcfg.Name,
		ClaimIdle: qcfg.ClaimIdle,
		Logger:    a.log,
	})
	if err != nil {
		return jobQueue{}, fmt.Errorf("setting up redis queue: %w", err)
	}
	a.probe.AddCheck("queue", q.Ping)
	a.closeQueue = q.Close
	a.log.Info("queue configured", "backend", "redis", "queue", qcfg.Name)

	// Handlers run in cmd/worker; here the registry only validates job
	// types, so its metrics stay unregistered.
	return jobQueue{queue: q, handlers: jobs.Handlers(a.log, nil)}, nil
}

func workerConfig(q config.Queue) worker.Config {
	return worker.Config{
		Concurrency:  q.Concurrency,
		MaxAttempts:  q.MaxAttempts,
		JobTimeout:   q.JobTimeout,
		RetryBackoff: q.RetryBackoff,
	}
}
