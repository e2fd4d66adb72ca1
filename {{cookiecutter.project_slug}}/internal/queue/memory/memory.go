// Package memory is an in-process job queue for running the API and the
// worker as one process without Redis. Jobs live in memory only, so a
// restart loses every queued and running job.
package memory

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// maxFinished bounds how many done or failed jobs are kept for Get; the
// oldest are forgotten first, so memory stays flat in a long-running process.
const maxFinished = 10_000

// Queue implements jobs.Queue and jobs.Consumer. The zero value is not
// usable; call New.
type Queue struct {
	mu       sync.Mutex
	jobs     map[string]*jobs.Job
	ready    []string      // ids in FIFO order
	delayed  delayedQueue  // ids waiting for their retry time
	finished []string      // ids of done and failed jobs, oldest first
	wake     chan struct{} // closed and replaced whenever a job becomes ready
	now      func() time.Time
}

// New returns an empty queue.
func New() *Queue {
	return &Queue{
		jobs: make(map[string]*jobs.Job),
		wake: make(chan struct{}),
		now:  time.Now,
	}
}

// Enqueue stores a new queued job.
func (q *Queue) Enqueue(_ context.Context, jobType string, payload json.RawMessage) (jobs.Job, error) {
	now := q.now().UTC()
	id := jobs.NewID(now)
	j := &jobs.Job{
		ID:        id,
		Type:      jobType,
		Payload:   payload,
		Status:    jobs.StatusQueued,
		CreatedAt: now,
		UpdatedAt: now,
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs[id] = j
	q.ready = append(q.ready, id)
	q.signal()
	return *j, nil
}

// Get returns a copy of the job's current state.
func (q *Queue) Get(_ context.Context, id string) (jobs.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.jobs[id]
	if !ok {
		return jobs.Job{}, jobs.ErrNotFound
	}
	return *j, nil
}

// Ping always succeeds: the queue has no backing store to lose.
func (q *Queue) Ping(context.Context) error { return nil }

// Fetch waits until at least one job is ready or ctx ends, and returns up to
// limit jobs marked running.
func (q *Queue) Fetch(ctx context.Context, limit int) ([]jobs.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("fetching %d jobs: want at least 1", limit)
	}
	for {
		q.mu.Lock()
		out := q.take(limit)
		wake, next := q.wake, q.nextDue()
		q.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		if err := waitForWork(ctx, wake, next); err != nil {
			return nil, err
		}
	}
}

// take moves due retries to the ready list and pops up to limit jobs from it.
// The caller holds q.mu.
func (q *Queue) take(limit int) []jobs.Delivery {
	now := q.now()
	for q.delayed.Len() > 0 && !q.delayed[0].due.After(now) {
		q.ready = append(q.ready, heap.Pop(&q.delayed).(delayedJob).id)
	}
	n := min(limit, len(q.ready))
	if n == 0 {
		return nil
	}
	out := make([]jobs.Delivery, 0, n)
	for _, id := range q.ready[:n] {
		j := q.jobs[id]
		j.Status = jobs.StatusRunning
		j.Attempts++
		j.UpdatedAt = now.UTC()
		out = append(out, jobs.Delivery{Job: *j, Receipt: id})
	}
	q.ready = q.ready[n:]
	return out
}

// nextDue returns the time the earliest retry is due, or the zero time when
// none waits. The caller holds q.mu.
func (q *Queue) nextDue() time.Time {
	if q.delayed.Len() == 0 {
		return time.Time{}
	}
	return q.delayed[0].due
}

// waitForWork blocks until wake is closed, the next retry is due or ctx
// ends.
func waitForWork(ctx context.Context, wake <-chan struct{}, next time.Time) error {
	var due <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		due = t.C
	}
	select {
	case <-wake:
	case <-due:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Complete marks the job done.
func (q *Queue) Complete(_ context.Context, d jobs.Delivery) error {
	return q.finish(d, jobs.StatusDone, "")
}

// DeadLetter marks the job failed. Failed jobs stay readable through Get
// until maxFinished newer jobs have finished.
func (q *Queue) DeadLetter(_ context.Context, d jobs.Delivery, cause error) error {
	return q.finish(d, jobs.StatusFailed, errorText(cause))
}

// Retry queues the job again once delay has passed.
func (q *Queue) Retry(_ context.Context, d jobs.Delivery, cause error, delay time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.jobs[d.Receipt]
	if !ok {
		return fmt.Errorf("retrying job %s: %w", d.Receipt, jobs.ErrNotFound)
	}
	now := q.now()
	j.Status = jobs.StatusQueued
	j.Error = errorText(cause)
	j.UpdatedAt = now.UTC()
	heap.Push(&q.delayed, delayedJob{id: j.ID, due: now.Add(delay)})
	q.signal() // a waiting Fetch must rearm its timer for the new due time
	return nil
}

func (q *Queue) finish(d jobs.Delivery, status jobs.Status, errText string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j, ok := q.jobs[d.Receipt]
	if !ok {
		return fmt.Errorf("finishing job %s: %w", d.Receipt, jobs.ErrNotFound)
	}
	if j.Status == jobs.StatusDone || j.Status == jobs.StatusFailed {
		return nil // already finished by an earlier delivery
	}
	j.Status = status
	j.Error = errText
	j.UpdatedAt = q.now().UTC()
	q.finished = append(q.finished, j.ID)
	if len(q.finished) > maxFinished {
		delete(q.jobs, q.finished[0])
		q.finished = q.finished[1:]
	}
	return nil
}

// Unfinished returns how many jobs are queued, waiting for a retry or
// running: the jobs that ending the process loses.
func (q *Queue) Unfinished() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) - len(q.finished)
}

// signal wakes every waiting Fetch. The caller holds q.mu.
func (q *Queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type delayedJob struct {
	id  string
	due time.Time
}

// delayedQueue is a min-heap of retries by due time.
type delayedQueue []delayedJob

func (h delayedQueue) Len() int           { return len(h) }
func (h delayedQueue) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayedQueue) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayedQueue) Push(x any)        { *h = append(*h, x.(delayedJob)) }
func (h *delayedQueue) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
