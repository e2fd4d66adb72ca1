package redisqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// incremented. Besides reading new entries it does the queue's upkeep, each
// part only when it is due (see upkeep): it claims entries left idle for
// longer than ClaimIdle (this is how the jobs of a crashed worker come back)
// and moves due retries onto the stream.
//
// The first Fetch creates the stream and the consumer group when they do not
// exist yet. Fetch returns the first Redis error instead of retrying, so the
// caller can back off while Redis is down; go-redis reconnects on a later
// call, and the group is created on the first call that reaches Redis. When ctx
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
		if !q.groupReady.Load() {
			if err := q.ensureGroup(ctx); err != nil {
				return nil, err
			}
		}
		ds, err := q.fetchOnce(ctx, limit)
		if isNoGroup(err) {
			// The stream and its group are gone: Redis restarted without
			// persistence, or someone deleted the key.
			q.log.Warn("consumer group missing, recreating it", "error", err)
			q.groupReady.Store(false)
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
	msgs, nextUpkeep, err := q.upkeep(ctx, limit)
	if err != nil {
		return nil, err
	}

	// Once entries are pending for this consumer, marking them running must
	// not fail because ctx ended in the meantime (go-redis refuses a command
	// on a cancelled context), or they would sit unseen until another
	// consumer claims them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	if len(msgs) > 0 {
		// Claimed deliveries go out at once, without waiting for new ones.
		return q.start(sctx, msgs)
	}

	// A busy worker finds entries waiting, and readScript reads and starts
	// them in one round trip. Only an empty stream needs the blocking read.
	if ds, err := q.readStarted(sctx, limit); err != nil || len(ds) > 0 {
		return ds, err
	}
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    q.group,
		Consumer: q.consumer,
		Streams:  []string{q.keys.stream, ">"},
		Count:    int64(limit),
		Block:    blockFor(ctx, nextUpkeep),
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading stream: %w", err)
	}
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return q.start(sctx, msgs)
}

// isNoGroup reports whether err is Redis's NOGROUP error: the stream or its
// consumer group does not exist. Redis 7.0 keeps the NOGROUP prefix when a
// script raises the error. Older versions may put other text first, which
// the substring match also covers.
func isNoGroup(err error) bool {
	return err != nil && (redis.HasErrorPrefix(err, "NOGROUP") || strings.Contains(err.Error(), "NOGROUP"))
}

// upkeep claims idle entries and moves due retries onto the stream when
// each is due, and returns the claimed entries and the time of the next
// upkeep. It runs on a timer because doing both on every fetch would add
// two round trips to every job, while a dead consumer's entries wait
// ClaimIdle anyway.
//
// Claiming runs every upkeepEvery, so a redelivery comes at most that long
// after ClaimIdle. Promoting runs when the earliest retry in the delayed set
// is due, when a Retry of this process is due, and at least every
// upkeepEvery for retries that other processes scheduled.
func (q *Queue) upkeep(ctx context.Context, limit int) ([]redis.XMessage, time.Time, error) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()

	now := time.Now()
	var msgs []redis.XMessage
	if !now.Before(q.nextClaim) {
		var err error
		if msgs, err = q.claim(ctx, limit); err != nil {
			return nil, time.Time{}, err
		}
		q.nextClaim = now.Add(q.upkeepEvery)
		if q.claimCursor != "0-0" {
			// The scan stopped partway through the pending list.
			q.nextClaim = now
		}
	}

	if due := q.nextPromote.Load(); now.UnixNano() >= due {
		wait, err := q.promote(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		// If a Retry lowered nextPromote since the load, its earlier time
		// stays.
		next := now.Add(min(wait, q.upkeepEvery)).UnixNano()
		q.nextPromote.CompareAndSwap(due, next)
	}

	nextUpkeep := q.nextClaim
	if p := time.Unix(0, q.nextPromote.Load()); p.Before(nextUpkeep) {
		nextUpkeep = p
	}
	return msgs, nextUpkeep, nil
}

// promote moves due retries onto the stream and returns how long until the
// earliest remaining retry is due, or upkeepEvery when none is left.
func (q *Queue) promote(ctx context.Context) (time.Duration, error) {
	keys := []string{q.keys.delayed, q.keys.stream}
	ms, err := promoteScript.Run(ctx, q.rdb, keys, promoteLimit).Int64()
	if err != nil {
		return 0, fmt.Errorf("moving due retries: %w", err)
	}
	if ms < 0 {
		return q.upkeepEvery, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// promoteBy makes the next Fetch move due retries no later than t.
func (q *Queue) promoteBy(t time.Time) {
	want := t.UnixNano()
	for {
		cur := q.nextPromote.Load()
		if cur <= want || q.nextPromote.CompareAndSwap(cur, want) {
			return
		}
	}
}

// claim takes over entries idle for longer than ClaimIdle with XAUTOCLAIM.
// The scan resumes where the previous one stopped, so a pending list longer
// than one batch is still covered over successive fetches. The caller holds
// claimMu.
func (q *Queue) claim(ctx context.Context, limit int) ([]redis.XMessage, error) {
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
// ctx ends or the next upkeep is due sooner. It never returns 0, which Redis
// reads as "block forever".
func blockFor(ctx context.Context, nextUpkeep time.Time) time.Duration {
	block := min(fetchBlock, time.Until(nextUpkeep))
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
		if ds, err = q.collect(ctx, ds, m.ID, entryJobID(m), reply); err != nil {
			break
		}
	}
	q.track(ds)
	return ds, err
}

// readStarted reads up to limit new entries and starts their jobs with
// readScript, and turns them into deliveries as start does.
func (q *Queue) readStarted(ctx context.Context, limit int) ([]jobs.Delivery, error) {
	replies, err := readScript.Run(ctx, q.rdb, []string{q.keys.stream},
		q.group, q.consumer, limit, stamp(), q.keys.prefix).Slice()
	if err != nil {
		return nil, fmt.Errorf("reading stream: %w", err)
	}

	ds := make([]jobs.Delivery, 0, len(replies))
	for _, reply := range replies {
		triple, _ := reply.([]any)
		if len(triple) != 3 {
			return nil, fmt.Errorf("reading stream: unexpected script reply %v", reply)
		}
		receipt, _ := triple[0].(string)
		jobID, _ := triple[1].(string)
		if ds, err = q.collect(ctx, ds, receipt, jobID, triple[2]); err != nil {
			break
		}
	}
	q.track(ds)
	return ds, err
}

// collect appends the delivery for one result of the Lua start function to
// ds, unless the entry was skipped. A job whose hash cannot be parsed would
// fail the same way on every redelivery, so it is dead-lettered at once.
func (q *Queue) collect(ctx context.Context, ds []jobs.Delivery, receipt, jobID string, reply any) ([]jobs.Delivery, error) {
	fields, ok := reply.([]any)
	if !ok {
		q.logSkipped(receipt, jobID, reply)
		return ds, nil
	}
	job, err := parseJob(pairs(fields))
	if err != nil {
		q.log.Error("unreadable job state, dead-lettering it", "receipt", receipt, "error", err)
		bad := jobs.Delivery{Job: jobs.Job{ID: jobID}, Receipt: receipt}
		return ds, q.DeadLetter(ctx, bad, err)
	}
	return append(ds, jobs.Delivery{Job: job, Receipt: receipt}), nil
}

func (q *Queue) logSkipped(receipt, jobID string, reason any) {
	text, _ := reason.(string)
	if redisErr, ok := strings.CutPrefix(text, unreadablePrefix); ok {
		q.log.Error("job key is not a hash, entry dropped", "job_id", jobID, "receipt", receipt, "error", redisErr)
		return
	}
	if text == "missing" {
		q.log.Warn("job state expired or missing, entry dropped", "job_id", jobID, "receipt", receipt)
		return
	}
	q.log.Info("job already finished, entry dropped", "job_id", jobID, "status", reason, "receipt", receipt)
}

// unreadablePrefix starts the reason the scripts give for a job key that
// holds something other than a hash, followed by the Redis error.
const unreadablePrefix = "unreadable: "

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
	q.promoteBy(time.Now().Add(delay))
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
	if redisErr, ok := strings.CutPrefix(res, unreadablePrefix); ok {
		q.log.Error("job key is not a hash, delivery acknowledged",
			"op", op, "job_id", d.Job.ID, "receipt", d.Receipt, "error", redisErr)
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
