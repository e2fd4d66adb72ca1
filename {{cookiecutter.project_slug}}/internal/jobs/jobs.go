// Package jobs defines background jobs, the queue contract that the API and
// the worker share, and the registry of job handlers.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Status is the lifecycle state of a job.
type Status string

// Job statuses, in the order a job normally passes through them.
const (
	StatusQueued  Status = "queued"
	StatusRunning Status = "running"
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
)

// ErrNotFound is returned by Queue.Get for an unknown job id.
var ErrNotFound = errors.New("job not found")

// Job is one unit of background work and its current state.
type Job struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Status    Status          `json:"status"`
	Attempts  int             `json:"attempts"`
	Error     string          `json:"error,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Queue is the producer side, used by the API.
type Queue interface {
	// Enqueue stores a new job with status queued and returns it.
	Enqueue(ctx context.Context, jobType string, payload json.RawMessage) (Job, error)
	// Get returns the current state of a job, or ErrNotFound.
	Get(ctx context.Context, id string) (Job, error)
	// Ping reports whether the queue's backing store is reachable.
	Ping(ctx context.Context) error
}

// Delivery is one job handed to a worker. Receipt identifies this delivery
// to the backend (a Redis stream entry id, for example).
type Delivery struct {
	Job     Job
	Receipt string
}

// Consumer is the worker side of a queue. Delivery is at least once: a job
// whose delivery is never completed, retried or dead-lettered (because its
// worker died) is handed out again after the backend's claim idle time.
type Consumer interface {
	// Fetch waits until jobs are available or ctx ends, and returns at most
	// limit deliveries, each already marked running with Attempts incremented.
	Fetch(ctx context.Context, limit int) ([]Delivery, error)
	// Complete marks the job done and acknowledges the delivery. A job is
	// marked done at most once, however often it was delivered.
	Complete(ctx context.Context, d Delivery) error
	// Retry acknowledges the delivery and queues the job again after delay.
	Retry(ctx context.Context, d Delivery, cause error, delay time.Duration) error
	// DeadLetter marks the job failed and moves it to the dead-letter queue.
	DeadLetter(ctx context.Context, d Delivery, cause error) error
	// Ping reports whether the queue's backing store is reachable.
	Ping(ctx context.Context) error
}
