package redisqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

const (
	// fetchBlock bounds one XREADGROUP wait. go-redis does not interrupt a
	// blocked read when its context is cancelled, so this is also how late
	// Fetch notices cancellation.
	fetchBlock = time.Second
	// promoteLimit caps how many due retries one fetch moves to the stream.
	promoteLimit = 100
	// startTimeout bounds marking fetched jobs running, which goes on after
	// the caller's context ends.
	startTimeout = 5 * time.Second
	// deadLetterMaxLen is the approximate length the dead-letter stream is
	// trimmed to.
	deadLetterMaxLen = 10000
)

// Fetch waits until jobs are available or ctx ends, and returns at most limit
// deliveries (one when limit is below 1), marked running with Attempts
// incremented. Each round it first claims entries left idle for longer than
// ClaimIdle (this is how the jobs of a crashed worker come back), then moves
// due retries onto the stream, then reads new entries.
//
// Fetch returns the first Redis error instead of retrying, so the caller can
// back off while Redis is down; go-redis reconnects on a later call. When ctx
// ends Fetch returns ctx.Err(), unless Redis has already handed over entries.
// Those are returned, and the caller should finish them with Complete, Retry
// or DeadLetter under a context that is still live: a delivery left alone is
// handed out again only after this Queue is closed and ClaimIdle has passed.
func (q *Queue) Fetch(ctx context.Context, limit int) ([]jobs.Delivery, error) {
	limit = max(limit, 1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ds, err := q.fetchOnce(ctx, limit)
		if redis.HasErrorPrefix(err, "NOGROUP") {
			// The stream and its group are gone: Redis restarted without
			// persistence, or someone deleted the key.
			q.log.Warn("consumer group missing, recreating it", "error", err)
			if err := q.ensureGroup(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil || len(ds) > 0 {
			return ds, err
		}
	}
}

// fetchOnce runs one round of Fetch. It may return no deliveries and no error
// when nothing arrived within fetchBlock or every entry was skipped.
func (q *Queue) fetchOnce(ctx context.Context, limit int) ([]jobs.Delivery, error) {
	msgs, err := q.claim(ctx, limit)
	if err != nil {
		return nil, err
	}

	keys := []string{q.keys.delayed, q.keys.stream}
	if err := promoteScript.Run(ctx, q.rdb, keys, promoteLimit).Err(); err != nil {
		return nil, fmt.Errorf("moving due retries: %w", err)
	}

	if n := limit - len(msgs); n > 0 {
		// Wait for new entries only when nothing was claimed, so claimed
		// deliveries are not held back by the block.
		block := time.Duration(-1)
		if len(msgs) == 0 {
			block = blockFor(ctx)
		}
		streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    q.group,
			Consumer: q.consumer,
			Streams:  []string{q.keys.stream, ">"},
			Count:    int64(n),
			Block:    block,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("reading stream: %w", err)
		}
		for _, s := range streams {
			msgs = append(msgs, s.Messages...)
		}
	}

	if len(msgs) == 0 {
		return nil, nil
	}
	// The entries are now pending for this consumer. Marking them running
	// must not fail because ctx ended in the meantime (go-redis refuses a
	// command on a cancelled context), or they would sit unseen until
	// another consumer claims them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	return q.start(sctx, msgs)
}

// claim takes over entries idle for longer than ClaimIdle with XAUTOCLAIM.
// The scan resumes where the previous one stopped, so a pending list longer
// than one batch is still covered over successive fetches.
func (q *Queue) claim(ctx context.Context, limit int) ([]redis.XMessage, error) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()

	msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   q.keys.stream,
		Group:    q.group,
		Consumer: q.consumer,
		MinIdle:  q.claimIdle,
		Start:    q.claimCursor,
		Count:    int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("claiming idle entries: %w", err)
	}
	q.claimCursor = next

	for _, m := range msgs {
		q.log.Info("job claimed from idle consumer", "job_id", m.Values["id"], "receipt", m.ID)
	}
	return msgs, nil
}

// blockFor returns how long XREADGROUP may block: fetchBlock, or less when
// ctx ends sooner. It never returns 0, which Redis reads as "block forever".
func blockFor(ctx context.Context) time.Duration {
	block := fetchBlock
	if deadline, ok := ctx.Deadline(); ok {
		block = min(block, time.Until(deadline))
	}
	return max(block, time.Millisecond)
}

// start marks the jobs of msgs running in one script call and turns them
// into deliveries, leaving out the entries the script skipped.
func (q *Queue) start(ctx context.Context, msgs []redis.XMessage) ([]jobs.Delivery, error) {
	keys := make([]string, 0, len(msgs)+1)
	args := make([]any, 0, len(msgs)+2)
	keys = append(keys, q.keys.stream)
	args = append(args, q.group, stamp())
	for _, m := range msgs {
		keys = append(keys, q.keys.job(entryJobID(m)))
		args = append(args, m.ID)
	}

	replies, err := startScript.Run(ctx, q.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("starting jobs: %w", err)
	}

	ds := make([]jobs.Delivery, 0, len(replies))
	for i, reply := range replies {
		m := msgs[i]
		fields, ok := reply.([]any)
		if !ok {
			q.logSkipped(m, reply)
			continue
		}
		job, err := parseJob(pairs(fields))
		if err != nil {
			// A hash this package cannot read would fail the same way on
			// every redelivery, so it goes to the dead-letter stream now.
			q.log.Error("unreadable job state, dead-lettering it", "receipt", m.ID, "error", err)
			bad := jobs.Delivery{Job: jobs.Job{ID: entryJobID(m)}, Receipt: m.ID}
			if err := q.DeadLetter(ctx, bad, err); err != nil {
				return nil, err
			}
			continue
		}
		ds = append(ds, jobs.Delivery{Job: job, Receipt: m.ID})
	}

	q.track(ds)
	return ds, nil
}

func (q *Queue) logSkipped(m redis.XMessage, reason any) {
	id := m.Values["id"]
	if reason == "missing" {
		q.log.Warn("job state expired or missing, entry dropped", "job_id", id, "receipt", m.ID)
		return
	}
	q.log.Info("job already finished, entry dropped", "job_id", id, "status", reason, "receipt", m.ID)
}

// entryJobID returns the job id a stream entry carries.
func entryJobID(m redis.XMessage) string {
	id, _ := m.Values["id"].(string)
	return id
}

// pairs turns a flat HGETALL reply into a map.
func pairs(flat []any) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return m
}

// Complete marks the job done and acknowledges the delivery. Completing a
// job that is already finished, or whose state has expired, only
// acknowledges the delivery.
func (q *Queue) Complete(ctx context.Context, d jobs.Delivery) error {
	defer q.untrack(d.Receipt)

	keys := []string{q.keys.stream, q.keys.job(d.Job.ID)}
	res, err := completeScript.Run(ctx, q.rdb, keys,
		q.group, d.Receipt, stamp(), seconds(q.retention)).Text()
	if err != nil {
		return fmt.Errorf("completing job %s: %w", d.Job.ID, err)
	}
	q.logUnchanged("complete", d, res)
	return nil
}

// Retry acknowledges the delivery, records cause on the job and queues it
// again after delay.
func (q *Queue) Retry(ctx context.Context, d jobs.Delivery, cause error, delay time.Duration) error {
	defer q.untrack(d.Receipt)

	keys := []string{q.keys.stream, q.keys.job(d.Job.ID), q.keys.delayed}
	res, err := retryScript.Run(ctx, q.rdb, keys,
		q.group, d.Receipt, stamp(), max(delay.Milliseconds(), 0), errText(cause), d.Job.ID).Text()
	if err != nil {
		return fmt.Errorf("retrying job %s: %w", d.Job.ID, err)
	}
	q.logUnchanged("retry", d, res)
	return nil
}

// DeadLetter marks the job failed with cause, acknowledges the delivery and
// appends the job to the dead-letter stream "<name>:dead".
func (q *Queue) DeadLetter(ctx context.Context, d jobs.Delivery, cause error) error {
	defer q.untrack(d.Receipt)

	keys := []string{q.keys.stream, q.keys.job(d.Job.ID), q.keys.dead}
	res, err := deadLetterScript.Run(ctx, q.rdb, keys,
		q.group, d.Receipt, stamp(), errText(cause), seconds(q.retention),
		d.Job.ID, deadLetterMaxLen).Text()
	if err != nil {
		return fmt.Errorf("dead-lettering job %s: %w", d.Job.ID, err)
	}
	q.logUnchanged("dead-letter", d, res)
	return nil
}

// logUnchanged logs when a script acknowledged a delivery without changing
// its job, which happens when the job was delivered more than once.
func (q *Queue) logUnchanged(op string, d jobs.Delivery, res string) {
	if res == "ok" {
		return
	}
	q.log.Info("job not changed, delivery acknowledged",
		"op", op, "job_id", d.Job.ID, "receipt", d.Receipt, "reason", res)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 1) }

// track and untrack maintain the set of receipts the heartbeat refreshes.
func (q *Queue) track(ds []jobs.Delivery) {
	q.inflightMu.Lock()
	defer q.inflightMu.Unlock()
	for _, d := range ds {
		q.inflight[d.Receipt] = struct{}{}
	}
}

func (q *Queue) untrack(receipt string) {
	q.inflightMu.Lock()
	defer q.inflightMu.Unlock()
	delete(q.inflight, receipt)
}

// heartbeat resets the idle time of this process's in-flight deliveries
// every third of ClaimIdle, by claiming them again for this consumer
// (XCLAIM with JUSTID leaves the delivery count alone). Without it, another
// consumer would claim and run again any job that runs longer than ClaimIdle.
// With it, only the deliveries of a process that stopped go idle.
//
// NOTE: XCLAIM takes the entry even if another consumer claimed it while this
// process could not reach Redis for longer than ClaimIdle. Both then hold the
// job; the scripts make sure it is finished once, but the handler runs twice.
func (q *Queue) heartbeat(ctx context.Context) {
	t := time.NewTicker(max(q.claimIdle/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}

		q.inflightMu.Lock()
		receipts := make([]string, 0, len(q.inflight))
		for r := range q.inflight {
			receipts = append(receipts, r)
		}
		q.inflightMu.Unlock()
		if len(receipts) == 0 {
			continue
		}

		err := q.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream:   q.keys.stream,
			Group:    q.group,
			Consumer: q.consumer,
			Messages: receipts,
		}).Err()
		if err != nil && ctx.Err() == nil {
			q.log.Warn("heartbeat of in-flight deliveries failed", "count", len(receipts), "error", err)
		}
	}
}
