package redisqueue

import (
	"context"
	"errors"
	"fmt"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// maxCompleteBatch caps how many completions go to Redis in one script
// call. It keeps each call short, because Redis serves no other client while
// a script runs.
const maxCompleteBatch = 64

// errClosed is returned by Complete once Close has begun.
var errClosed = errors.New("queue closed")

// completion is one Complete call handed to the completer.
type completion struct {
	d     jobs.Delivery
	reply chan error // buffered, so the completer never waits for the caller
}

// Complete marks the job done and acknowledges the delivery. Completing a
// job that is already finished, or whose state has expired, only
// acknowledges the delivery.
//
// A busy worker completes every job, so the completer goroutine sends all
// waiting calls in one script call and the calls that arrive meanwhile form
// the next one. The script checks each job's status on its own, so a job is
// still marked done at most once.
func (q *Queue) Complete(ctx context.Context, d jobs.Delivery) error {
	defer q.untrack(d.Receipt)

	c := completion{d: d, reply: make(chan error, 1)}
	select {
	case q.completions <- c:
	case <-q.closing:
		return fmt.Errorf("completing job %s: %w", d.Job.ID, errClosed)
	case <-ctx.Done():
		return fmt.Errorf("completing job %s: %w", d.Job.ID, ctx.Err())
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		// The batch may still mark the job done. If it does not, the
		// entry stays pending and is redelivered after ClaimIdle.
		return fmt.Errorf("completing job %s: %w", d.Job.ID, ctx.Err())
	}
}

// completer takes Complete calls until ctx ends and sends them in batches.
// q.completions is unbuffered, so every call is either taken and replied to,
// or rejected by Complete once Close has begun.
func (q *Queue) completer(ctx context.Context) {
	batch := make([]completion, 0, maxCompleteBatch)
	for {
		select {
		case c := <-q.completions:
			batch = append(batch[:0], c)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < maxCompleteBatch {
			select {
			case c := <-q.completions:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		q.completeBatch(batch)
	}
}

// completeBatch runs completeScript once for the whole batch and replies
// to each caller. It uses its own context because one caller giving up must
// not fail the others.
func (q *Queue) completeBatch(batch []completion) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	keys := make([]string, 0, len(batch)+1)
	args := make([]any, 0, len(batch)+3)
	keys = append(keys, q.keys.stream)
	args = append(args, q.group, stamp(), seconds(q.retention))
	for _, c := range batch {
		keys = append(keys, q.keys.job(c.d.Job.ID))
		args = append(args, c.d.Receipt)
	}
	replies, err := completeScript.Run(ctx, q.rdb, keys, args...).StringSlice()
	if err == nil && len(replies) != len(batch) {
		err = fmt.Errorf("script replied %d results for %d jobs", len(replies), len(batch))
	}
	for i, c := range batch {
		if err != nil {
			c.reply <- fmt.Errorf("completing job %s: %w", c.d.Job.ID, err)
			continue
		}
		q.logUnchanged("complete", c.d, replies[i])
		c.reply <- nil
	}
}
