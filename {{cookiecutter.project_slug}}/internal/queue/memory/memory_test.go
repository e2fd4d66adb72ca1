package memory

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

func fetchOne(t *testing.T, q *Queue) jobs.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	ds, err := q.Fetch(ctx, 1)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(ds) != 1 {
		t.Fatalf("Fetch returned %d deliveries, want 1", len(ds))
	}
	return ds[0]
}

func TestEnqueueFetchComplete(t *testing.T) {
	q := New()
	ctx := t.Context()
	job, err := q.Enqueue(ctx, "echo", json.RawMessage(`{"a":1}`))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if job.Status != jobs.StatusQueued || job.ID == "" {
		t.Errorf("enqueued job = %+v, want queued with an id", job)
	}

	d := fetchOne(t, q)
	if d.Job.ID != job.ID || d.Job.Status != jobs.StatusRunning || d.Job.Attempts != 1 {
		t.Errorf("fetched job = %+v, want %s running on attempt 1", d.Job, job.ID)
	}
	if err := q.Complete(ctx, d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got, err := q.Get(ctx, job.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Status != jobs.StatusDone {
		t.Errorf("status after Complete = %s, want done", got.Status)
	}
}

func TestFetchOrderFIFO(t *testing.T) {
	q := New()
	var ids []string
	for range 3 {
		j, _ := q.Enqueue(t.Context(), "echo", nil)
		ids = append(ids, j.ID)
	}
	ds, err := q.Fetch(t.Context(), 10)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(ds) != 3 {
		t.Fatalf("Fetch returned %d, want 3", len(ds))
	}
	for i, d := range ds {
		if d.Job.ID != ids[i] {
			t.Errorf("delivery %d is %s, want %s", i, d.Job.ID, ids[i])
		}
	}
}

func TestFetchWaitsForEnqueue(t *testing.T) {
	q := New()
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = q.Enqueue(context.Background(), "echo", nil)
	}()
	fetchOne(t, q)
}

func TestFetchEndsWithContext(t *testing.T) {
	q := New()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Fetch(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch on an empty queue = %v, want the context's deadline error", err)
	}
}

func TestRetryDelayed(t *testing.T) {
	q := New()
	job, _ := q.Enqueue(t.Context(), "echo", nil)
	d := fetchOne(t, q)
	start := time.Now()
	if err := q.Retry(t.Context(), d, errors.New("flaky"), 50*time.Millisecond); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	got, _ := q.Get(t.Context(), job.ID)
	if got.Status != jobs.StatusQueued || got.Error != "flaky" {
		t.Errorf("job after Retry = %+v, want queued with the error", got)
	}

	d = fetchOne(t, q)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("retry delivered after %v, want at least 50ms", waited)
	}
	if d.Job.Attempts != 2 {
		t.Errorf("attempts on redelivery = %d, want 2", d.Job.Attempts)
	}
}

func TestDeadLetter(t *testing.T) {
	q := New()
	job, _ := q.Enqueue(t.Context(), "echo", nil)
	d := fetchOne(t, q)
	if err := q.DeadLetter(t.Context(), d, errors.New("broken")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	got, _ := q.Get(t.Context(), job.ID)
	if got.Status != jobs.StatusFailed || got.Error != "broken" {
		t.Errorf("job after DeadLetter = %+v, want failed with the error", got)
	}
	// A late Complete of the same delivery leaves the job failed.
	if err := q.Complete(t.Context(), d); err != nil {
		t.Fatalf("Complete after DeadLetter: %v", err)
	}
	if got, _ := q.Get(t.Context(), job.ID); got.Status != jobs.StatusFailed {
		t.Errorf("status = %s, want failed to stay", got.Status)
	}
}

func TestGetNotFound(t *testing.T) {
	if _, err := New().Get(t.Context(), "missing"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestFinishedJobsBounded(t *testing.T) {
	q := New()
	first, _ := q.Enqueue(t.Context(), "echo", nil)
	for range maxFinished {
		_, _ = q.Enqueue(t.Context(), "echo", nil)
	}
	for {
		ds, _ := q.Fetch(t.Context(), 1000)
		for _, d := range ds {
			_ = q.Complete(t.Context(), d)
		}
		if len(q.ready) == 0 {
			break
		}
	}
	if _, err := q.Get(t.Context(), first.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("oldest finished job still stored past %d finished jobs", maxFinished)
	}
	if n := len(q.jobs); n != maxFinished {
		t.Errorf("stored jobs = %d, want %d", n, maxFinished)
	}
}

func TestUnfinished(t *testing.T) {
	q := New()
	ctx := context.Background()
	for range 3 {
		if _, err := q.Enqueue(ctx, "echo", nil); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := q.Fetch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Complete(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if n := q.Unfinished(); n != 2 {
		t.Errorf("Unfinished() = %d, want 2", n)
	}
}
