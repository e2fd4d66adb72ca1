// Package worker runs jobs from a jobs.Consumer with bounded concurrency,
// per-job timeouts, retries with exponential backoff and dead-lettering.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// Config sets how the worker runs jobs.
type Config struct {
	Concurrency  int           // jobs run at once
	MaxAttempts  int           // attempts before a job is dead-lettered
	JobTimeout   time.Duration // limit of one attempt
	RetryBackoff time.Duration // delay before the first retry, doubled per attempt
	// InMemory is true when the queue lives in this process, so jobs that
	// shutdown abandons are lost with it instead of being redelivered, and
	// a fetch costs no round trip, so the worker does not batch fetches.
	InMemory bool
}

// settlingPerSlot is how many finished jobs per slot may wait for their
// Complete, Retry or DeadLetter call. The Redis queue batches completions
// and replies to several a round trip later. With one per slot, the slots
// would sit idle during that round trip.
const settlingPerSlot = 4

// fetchLoops is how many loops fetch from a remote queue at once. Their
// round trips overlap, so slots freed during one fetch do not wait for it
// to return. With 4 slots and jobs that take microseconds, four loops ran
// about 35% more jobs per second than one (scripts/bench.py, worker and
// Redis each on one core of a 2-core machine).
const fetchLoops = 4

// ackTimeout bounds Complete, Retry and DeadLetter calls. Those run on
// their own context so that a shutdown does not cut off the acknowledgement
// of a job that has already finished.
const ackTimeout = 5 * time.Second

var errUnknownType = errors.New("no handler registered for the job type")

// Worker fetches jobs and runs them with the registered handlers.
type Worker struct {
	consumer jobs.Consumer
	handlers *jobs.Registry
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	fetchLog *rateLimitedLog

	fetchCtx  context.Context // ends when the worker stops fetching
	stopFetch context.CancelFunc
	jobCtx    context.Context // ends when in-flight jobs are abandoned
	abortJobs context.CancelFunc
	slots     chan struct{} // one token per running handler, Concurrency at most
	settling  chan struct{} // one token per settlement in flight
	running   sync.WaitGroup
	done      chan struct{}
}

// New returns a worker that is not yet running. Its metrics are registered
// with reg.
func New(c jobs.Consumer, handlers *jobs.Registry, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Worker {
	return &Worker{
		consumer: c,
		handlers: handlers,
		cfg:      cfg,
		log:      log,
		metrics:  newMetrics(reg),
		fetchLog: newRateLimitedLog(log, fetchErrorLogInterval),
		done:     make(chan struct{}),
	}
}

// Start launches the fetch loops and returns at once. They run until
// Shutdown; ctx supplies values only, its cancellation is ignored.
func (w *Worker) Start(ctx context.Context) {
	base := context.WithoutCancel(ctx)
	w.fetchCtx, w.stopFetch = context.WithCancel(base)
	w.jobCtx, w.abortJobs = context.WithCancel(base)
	w.slots = make(chan struct{}, max(w.cfg.Concurrency, 1))
	w.settling = make(chan struct{}, settlingPerSlot*cap(w.slots))

	// A remote queue gets up to fetchLoops loops that fetch in batches, each
	// batch at most its share of the slots. An in-memory queue gets one loop
	// per slot that runs its job inline, which saves a goroutine per job
	// where batching would save nothing.
	var loops sync.WaitGroup
	if w.cfg.InMemory {
		for range cap(w.slots) {
			loops.Go(func() { w.loop(1) })
		}
	} else {
		n := min(fetchLoops, cap(w.slots))
		batch := (cap(w.slots) + n - 1) / n
		for range n {
			loops.Go(func() { w.loop(batch) })
		}
	}
	go func() {
		loops.Wait()
		w.running.Wait()
		close(w.done)
	}()
	w.log.Info("worker started", "concurrency", w.cfg.Concurrency, "types", w.handlers.Types())
}

// Shutdown stops fetching and waits for in-flight jobs to finish. When ctx
// ends first it cancels their contexts and returns without acknowledging
// them, so a Redis queue delivers them again after its claim idle time; an
// in-memory queue (Config.InMemory) loses them when the process exits.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.stopFetch()
	select {
	case <-w.done:
		w.abortJobs()
		w.log.Info("worker stopped")
		return nil
	case <-ctx.Done():
	}
	w.abortJobs()
	if w.cfg.InMemory {
		w.log.Warn("worker stopped with jobs in flight; the in-memory queue ends with this process, " +
			"so they are lost, as are the jobs still queued")
	} else {
		w.log.Warn("worker stopped with jobs in flight; they will be redelivered")
	}
	return fmt.Errorf("waiting for in-flight jobs: %w", ctx.Err())
}

// loop fetches jobs until fetching stops. It requests as many jobs as there
// are free slots, up to batch, so it never holds more jobs than the worker
// can start at once. From a remote queue one round trip then brings several
// jobs, and each runs on its own goroutine. From the in-memory queue the
// loop takes one job at a time and runs it inline.
func (w *Worker) loop(batch int) {
	failures := 0
	for {
		free, ok := w.acquire(batch)
		if !ok {
			return
		}
		ds, err := w.consumer.Fetch(w.fetchCtx, free)
		for _, d := range ds {
			if w.cfg.InMemory {
				w.process(d)
			} else {
				w.running.Go(func() { w.process(d) })
			}
		}
		w.release(free - len(ds))
		if w.fetchCtx.Err() != nil {
			return
		}
		if err == nil {
			if failures > 0 {
				w.log.Info("queue fetch recovered", "failures", failures)
			}
			failures = 0
			continue
		}
		failures++
		w.fetchLog.Error("queue fetch failed", "error", err, "failures", failures)
		if sleep(w.fetchCtx, fetchBackoff(failures)) != nil {
			return
		}
	}
}

// acquire waits for a free slot and then takes other free slots, up to
// batch in all. It returns how many it took, or false once fetching stops.
func (w *Worker) acquire(batch int) (int, bool) {
	select {
	case w.slots <- struct{}{}:
	case <-w.fetchCtx.Done():
		return 0, false
	}
	if batch == 1 {
		return 1, true
	}
	// Handlers started moments ago may be about to free their slots.
	// Yielding lets them run first, which makes the next batch larger.
	runtime.Gosched()
	n := 1
	for n < batch {
		select {
		case w.slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

// release frees n slots.
func (w *Worker) release(n int) {
	for range n {
		<-w.slots
	}
}

// handlerDone trades the slot of a job whose handler has returned for a
// settlement token. settled returns the token.
func (w *Worker) handlerDone() {
	w.settling <- struct{}{}
	w.release(1)
}

func (w *Worker) settled() { <-w.settling }

// process runs one delivery and settles it: complete, retry or dead-letter.
//
// The slot is freed as soon as the handler returns, so the next fetch
// overlaps the round trip that settles this job. Settlements in flight take
// tokens of their own. When the queue stops replying, the tokens run out,
// the slots stay taken and fetching stops.
func (w *Worker) process(d jobs.Delivery) {
	job := d.Job
	log := w.log.With("job_id", job.ID, "type", job.Type, "attempt", job.Attempts)

	h, ok := w.handlers.Lookup(job.Type)
	if !ok {
		// Retrying cannot help: no attempt will find a handler either.
		w.handlerDone()
		defer w.settled()
		w.deadLetter(d, log, "unknown", errUnknownType)
		return
	}

	log.Debug("job started")
	start := time.Now()
	err := w.run(h, job, log)
	elapsed := time.Since(start)
	w.handlerDone()
	defer w.settled()
	w.metrics.observe(job.Type, elapsed, err)

	switch {
	case err == nil:
		w.settle(log, "completing job", func(ctx context.Context) error { return w.consumer.Complete(ctx, d) })
		log.Info("job done", "duration", elapsed)
	case w.jobCtx.Err() != nil && w.cfg.InMemory:
		log.Warn("job abandoned by shutdown; the in-memory queue loses it", "error", err, "duration", elapsed)
	case w.jobCtx.Err() != nil:
		log.Warn("job abandoned by shutdown; it will be redelivered", "error", err, "duration", elapsed)
	case job.Attempts >= w.cfg.MaxAttempts:
		w.deadLetter(d, log, job.Type, err)
	default:
		w.retry(d, log, err)
	}
}

// run calls the handler with the job timeout and turns a panic into an
// error, so that one bad job cannot stop the worker.
func (w *Worker) run(h jobs.Handler, job jobs.Job, log *slog.Logger) (err error) {
	ctx, cancel := context.WithTimeout(w.jobCtx, w.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			log.Error("job panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return h.Handle(ctx, job)
}

func (w *Worker) retry(d jobs.Delivery, log *slog.Logger, cause error) {
	delay := retryDelay(w.cfg.RetryBackoff, d.Job.Attempts)
	w.metrics.retried.WithLabelValues(d.Job.Type).Inc()
	log.Warn("job retry", "error", cause, "delay", delay, "max_attempts", w.cfg.MaxAttempts)
	w.settle(log, "retrying job", func(ctx context.Context) error {
		return w.consumer.Retry(ctx, d, cause, delay)
	})
}

// deadLetter labels metrics with typeLabel instead of the job's own type
// for unknown types, which could otherwise be any string.
func (w *Worker) deadLetter(d jobs.Delivery, log *slog.Logger, typeLabel string, cause error) {
	w.metrics.deadLettered.WithLabelValues(typeLabel).Inc()
	log.Error("job dead-lettered", "error", cause)
	w.settle(log, "dead-lettering job", func(ctx context.Context) error {
		return w.consumer.DeadLetter(ctx, d, cause)
	})
}

// settle runs one acknowledgement call. When it fails the job stays
// unacknowledged and the queue redelivers it after its claim idle time.
func (w *Worker) settle(log *slog.Logger, action string, call func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.jobCtx), ackTimeout)
	defer cancel()
	if err := call(ctx); err != nil {
		log.Error("job acknowledgement failed", "action", action, "error", err)
	}
}
