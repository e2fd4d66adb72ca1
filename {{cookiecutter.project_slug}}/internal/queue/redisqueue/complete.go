package redisqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// maxCompleteBatch caps how many completions go to Redis in one pipeline.
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
// waiting calls in one pipeline and the calls that arrive meanwhile form the
// next one. Each job still gets its own run of completeScript, so it is
// marked done at most once. Only the round trips are shared.
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
		// The pipeline may still mark the job done. If it does not, the
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

// completeBatch runs completeScript once per completion, all in one
// pipeline, and replies to each caller. It uses its own context because one
// caller giving up must not fail the others.
func (q *Queue) completeBatch(batch []completion) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	now, retention := stamp(), seconds(q.retention)
	keys := func(d jobs.Delivery) []string { return []string{q.keys.stream, q.keys.job(d.Job.ID)} }
	cmds := make([]*redis.Cmd, len(batch))
	pipe := q.rdb.Pipeline()
	for i, c := range batch {
		cmds[i] = completeScript.EvalSha(ctx, pipe, keys(c.d), q.group, c.d.Receipt, now, retention)
	}
	_, _ = pipe.Exec(ctx) // The loop below reads each command's error.

	for i, c := range batch {
		res, err := cmds[i].Text()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis restarted and lost its script cache. A pipeline cannot
			// fall back to EVAL, so Run sends this one again on its own.
			res, err = completeScript.Run(ctx, q.rdb, keys(c.d), q.group, c.d.Receipt, now, retention).Text()
		}
		if err != nil {
			c.reply <- fmt.Errorf("completing job %s: %w", c.d.Job.ID, err)
			continue
		}
		q.logUnchanged("complete", c.d, res)
		c.reply <- nil
	}
}
