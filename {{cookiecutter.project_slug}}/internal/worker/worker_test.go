package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// fakeConsumer hands out deliveries from a channel and records how each
// one was settled. Retried jobs come back after their delay, as from a
// real queue.
type fakeConsumer struct {
	deliveries chan jobs.Delivery
	settled    chan string // "complete", "retry" or "dead-letter", one per settlement
	fetchErrs  chan error  // returned by Fetch before any delivery

	mu     sync.Mutex
	delays []time.Duration
}

func newFakeConsumer() *fakeConsumer {
	return &fakeConsumer{
		deliveries: make(chan jobs.Delivery, 16),
		settled:    make(chan string, 16),
		fetchErrs:  make(chan error, 16),
	}
}

func (c *fakeConsumer) add(id, jobType string) {
	c.deliveries <- jobs.Delivery{Job: jobs.Job{ID: id, Type: jobType, Attempts: 1}, Receipt: id}
}

func (c *fakeConsumer) Fetch(ctx context.Context, _ int) ([]jobs.Delivery, error) {
	select {
	case err := <-c.fetchErrs:
		return nil, err
	default:
	}
	select {
	case d := <-c.deliveries:
		return []jobs.Delivery{d}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *fakeConsumer) Complete(context.Context, jobs.Delivery) error {
	c.settled <- "complete"
	return nil
}

func (c *fakeConsumer) Retry(_ context.Context, d jobs.Delivery, _ error, delay time.Duration) error {
	c.mu.Lock()
	c.delays = append(c.delays, delay)
	c.mu.Unlock()
	c.settled <- "retry"
	d.Job.Attempts++
	time.AfterFunc(delay, func() { c.deliveries <- d })
	return nil
}

func (c *fakeConsumer) DeadLetter(context.Context, jobs.Delivery, error) error {
	c.settled <- "dead-letter"
	return nil
}

func (c *fakeConsumer) Ping(context.Context) error { return nil }

// expectSettled waits for the next settlements and compares them to want.
func (c *fakeConsumer) expectSettled(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-c.settled:
			if got != w {
				t.Fatalf("settlement %d = %s, want %s", i+1, got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("settlement %d: timed out waiting for %s", i+1, w)
		}
	}
}

func startWorker(t *testing.T, c jobs.Consumer, handlers *jobs.Registry, cfg Config) (*Worker, *metrics) {
	t.Helper()
	w := New(c, handlers, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	w.Start(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return w, w.metrics
}

var testConfig = Config{Concurrency: 2, MaxAttempts: 3, JobTimeout: time.Second, RetryBackoff: time.Millisecond}

func registry(name string, h jobs.HandlerFunc) *jobs.Registry {
	r := jobs.NewRegistry()
	r.Register(name, h)
	return r
}

func TestWorkerCompletes(t *testing.T) {
	c := newFakeConsumer()
	_, m := startWorker(t, c, registry("ok", func(context.Context, jobs.Job) error { return nil }), testConfig)
	c.add("1", "ok")
	c.expectSettled(t, "complete")
	if got := testutil.ToFloat64(m.processed.WithLabelValues("ok")); got != 1 {
		t.Errorf("jobs_processed_total = %v, want 1", got)
	}
}

func TestWorkerRetriesThenDeadLetters(t *testing.T) {
	c := newFakeConsumer()
	failing := registry("flaky", func(context.Context, jobs.Job) error { return errors.New("always") })
	_, m := startWorker(t, c, failing, testConfig)
	c.add("1", "flaky")
	c.expectSettled(t, "retry", "retry", "dead-letter")

	for name, want := range map[string]float64{"failed": 3, "retried": 2, "dead-lettered": 1} {
		vec := map[string]*prometheus.CounterVec{"failed": m.failed, "retried": m.retried, "dead-lettered": m.deadLettered}[name]
		if got := testutil.ToFloat64(vec.WithLabelValues("flaky")); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, d := range c.delays {
		if limit := time.Millisecond << i; d < limit/2 || d > limit {
			t.Errorf("retry %d delay = %v, want between %v and %v", i+1, d, limit/2, limit)
		}
	}
}

func TestWorkerRecoversPanic(t *testing.T) {
	c := newFakeConsumer()
	_, _ = startWorker(t, c, registry("bad", func(context.Context, jobs.Job) error { panic("oops") }), testConfig)
	c.add("1", "bad")
	c.expectSettled(t, "retry")
}

func TestWorkerUnknownTypeDeadLettered(t *testing.T) {
	c := newFakeConsumer()
	_, m := startWorker(t, c, registry("known", func(context.Context, jobs.Job) error { return nil }), testConfig)
	c.add("1", "mystery")
	c.expectSettled(t, "dead-letter")
	if got := testutil.ToFloat64(m.deadLettered.WithLabelValues("unknown")); got != 1 {
		t.Errorf("jobs_dead_lettered_total{type=unknown} = %v, want 1", got)
	}
}

func TestWorkerJobTimeout(t *testing.T) {
	c := newFakeConsumer()
	cfg := testConfig
	cfg.JobTimeout = 20 * time.Millisecond
	cfg.MaxAttempts = 1
	slow := registry("slow", func(ctx context.Context, _ jobs.Job) error {
		<-ctx.Done()
		return ctx.Err()
	})
	_, _ = startWorker(t, c, slow, cfg)
	c.add("1", "slow")
	c.expectSettled(t, "dead-letter")
}

func TestWorkerSurvivesFetchErrors(t *testing.T) {
	c := newFakeConsumer()
	for range 3 {
		c.fetchErrs <- errors.New("connection refused")
	}
	cfg := testConfig
	cfg.Concurrency = 1
	_, _ = startWorker(t, c, registry("ok", func(context.Context, jobs.Job) error { return nil }), cfg)
	c.add("1", "ok")
	c.expectSettled(t, "complete")
}

func TestShutdownFinishesInFlight(t *testing.T) {
	c := newFakeConsumer()
	started := make(chan struct{})
	h := registry("slow", func(context.Context, jobs.Job) error {
		close(started)
		time.Sleep(100 * time.Millisecond)
		return nil
	})
	w := New(c, h, testConfig, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	w.Start(t.Context())
	c.add("1", "slow")
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expectSettled(t, "complete")

	// After Shutdown nothing more is fetched.
	c.add("2", "slow")
	select {
	case s := <-c.settled:
		t.Errorf("job settled after shutdown: %s", s)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestShutdownBudgetAbandonsJobs(t *testing.T) {
	c := newFakeConsumer()
	started := make(chan struct{})
	h := registry("stuck", func(ctx context.Context, _ jobs.Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	cfg := testConfig
	cfg.JobTimeout = time.Minute
	w := New(c, h, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	w.Start(t.Context())
	c.add("1", "stuck")
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want a deadline error", err)
	}
	// The abandoned job is neither completed, retried nor dead-lettered,
	// so the queue redelivers it.
	select {
	case s := <-c.settled:
		t.Errorf("abandoned job was settled: %s", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRetryDelayCapped(t *testing.T) {
	for attempt := 1; attempt <= 40; attempt++ {
		d := retryDelay(time.Second, attempt)
		if d <= 0 || d > maxRetryDelay {
			t.Errorf("retryDelay(1s, %d) = %v, want in (0, %v]", attempt, d, maxRetryDelay)
		}
	}
}
