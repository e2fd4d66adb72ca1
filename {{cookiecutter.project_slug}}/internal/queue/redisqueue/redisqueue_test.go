package redisqueue

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// The tests below that need Redis run against the server in REDIS_URL and
// are skipped without it, for example:
//
//	redis-server --port 6379 --save '' --appendonly no --daemonize yes
//	REDIS_URL=redis://127.0.0.1:6379/0 go test -race ./internal/queue/redisqueue/
//
// Each test uses its own queue name, so tests can share one server and run in
// parallel; the keys are deleted when the test ends.

// redisURL returns REDIS_URL or skips the test.
func redisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL is not set; set it to run the Redis integration tests")
	}
	return url
}

// testName returns a queue name that no other test or run uses, and deletes
// its keys when the test ends.
func testName(t *testing.T, url string) string {
	t.Helper()
	base := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	name := "test-" + base + "-" + strings.ToLower(rand.Text()[:8])

	t.Cleanup(func() {
		rdb := redisClient(t, url)
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, name+":*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return name
}

// redisClient opens a plain client for inspecting what the queue wrote.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parsing REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// open starts a Queue named name for consumer and closes it when the test
// ends. ClaimIdle 0 means the default.
func open(t *testing.T, url, name, consumer string, claimIdle time.Duration) *Queue {
	t.Helper()
	q, err := New(Options{
		URL:       url,
		Name:      name,
		Consumer:  consumer,
		ClaimIdle: claimIdle,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// fetchOne fetches with a deadline and fails unless exactly one delivery
// comes back.
func fetchOne(t *testing.T, q *Queue) jobs.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ds, err := q.Fetch(ctx, 10)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(ds) != 1 {
		t.Fatalf("Fetch returned %d deliveries, want 1", len(ds))
	}
	return ds[0]
}

// fetchNone fails if a fetch within wait returns anything.
func fetchNone(t *testing.T, q *Queue, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	ds, err := q.Fetch(ctx, 10)
	if len(ds) != 0 {
		t.Fatalf("Fetch returned %d deliveries, want none", len(ds))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch error = %v, want context.DeadlineExceeded", err)
	}
}

func mustEnqueue(t *testing.T, q *Queue, payload string) jobs.Job {
	t.Helper()
	job, err := q.Enqueue(context.Background(), "echo", json.RawMessage(payload))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return job
}

func mustGet(t *testing.T, q *Queue, id string) jobs.Job {
	t.Helper()
	job, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return job
}

// assertDrained fails unless the stream is empty and nothing is pending.
func assertDrained(t *testing.T, rdb *redis.Client, name string) {
	t.Helper()
	ctx := context.Background()
	if n := rdb.XLen(ctx, name+":stream").Val(); n != 0 {
		t.Errorf("stream holds %d entries, want 0", n)
	}
	pending, err := rdb.XPending(ctx, name+":stream", name).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	if pending.Count != 0 {
		t.Errorf("%d deliveries pending, want 0", pending.Count)
	}
	if n := rdb.ZCard(ctx, name+":delayed").Val(); n != 0 {
		t.Errorf("delayed set holds %d jobs, want 0", n)
	}
}

func TestEnqueueGetComplete(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)

	job := mustEnqueue(t, q, `{"message":"hello"}`)
	got := mustGet(t, q, job.ID)
	if got.Status != jobs.StatusQueued || got.Attempts != 0 || got.Type != "echo" {
		t.Fatalf("after Enqueue: status %q attempts %d type %q", got.Status, got.Attempts, got.Type)
	}
	if string(got.Payload) != `{"message":"hello"}` {
		t.Fatalf("payload = %s", got.Payload)
	}
	if !got.CreatedAt.Equal(job.CreatedAt) {
		t.Fatalf("created_at = %v, want %v", got.CreatedAt, job.CreatedAt)
	}

	d := fetchOne(t, q)
	if d.Job.ID != job.ID || d.Job.Status != jobs.StatusRunning || d.Job.Attempts != 1 {
		t.Fatalf("delivery: id %s status %q attempts %d", d.Job.ID, d.Job.Status, d.Job.Attempts)
	}
	if got := mustGet(t, q, job.ID); got.Status != jobs.StatusRunning {
		t.Fatalf("after Fetch: status %q", got.Status)
	}

	if err := q.Complete(context.Background(), d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got = mustGet(t, q, job.ID)
	if got.Status != jobs.StatusDone || got.Attempts != 1 || got.Error != "" {
		t.Fatalf("after Complete: status %q attempts %d error %q", got.Status, got.Attempts, got.Error)
	}
	ttl := rdb.TTL(context.Background(), name+":job:"+job.ID).Val()
	if ttl <= 0 || ttl > defaultRetention {
		t.Fatalf("ttl of a done job = %v, want within (0, %v]", ttl, defaultRetention)
	}
	assertDrained(t, rdb, name)
}

func TestGetUnknown(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	q := open(t, url, testName(t, url), "a", 0)

	_, err := q.Get(context.Background(), jobs.NewID(time.Now()))
	if !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Get of an unknown id: error %v, want jobs.ErrNotFound", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	q := open(t, url, testName(t, url), "a", 0)

	if err := q.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// A consumer that fetched a job and died without finishing it must not take
// the job with it: once the delivery has been idle for ClaimIdle, another
// consumer gets it.
func TestRedeliveryAfterConsumerDies(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	a := open(t, url, name, "a", 0)
	b := open(t, url, name, "b", 200*time.Millisecond)

	job := mustEnqueue(t, a, `{}`)
	first := fetchOne(t, a)
	if err := a.Close(); err != nil { // dies: no heartbeat, no ack
		t.Fatalf("Close: %v", err)
	}

	second := fetchOne(t, b)
	if second.Job.ID != job.ID || second.Receipt != first.Receipt {
		t.Fatalf("redelivered %s (%s), want %s (%s)", second.Job.ID, second.Receipt, job.ID, first.Receipt)
	}
	if second.Job.Attempts != 2 {
		t.Fatalf("attempts after redelivery = %d, want 2", second.Job.Attempts)
	}
	if err := b.Complete(context.Background(), second); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := mustGet(t, b, job.ID); got.Status != jobs.StatusDone {
		t.Fatalf("status %q, want done", got.Status)
	}
	assertDrained(t, redisClient(t, url), name)
}

// A live consumer's deliveries are refreshed by the heartbeat, so another
// consumer does not claim a job that merely runs longer than ClaimIdle.
func TestHeartbeatKeepsLongJob(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	a := open(t, url, name, "a", 300*time.Millisecond)
	b := open(t, url, name, "b", 300*time.Millisecond)

	mustEnqueue(t, a, `{}`)
	d := fetchOne(t, a)
	fetchNone(t, b, 1500*time.Millisecond)

	if err := a.Complete(context.Background(), d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()
	const retryDelay = 300 * time.Millisecond

	job := mustEnqueue(t, q, `{"n":1}`)
	var retried time.Time
	for attempt, delay := range []time.Duration{retryDelay, 0} {
		d := fetchOne(t, q)
		if attempt == 1 {
			// Redis scores the retry in whole milliseconds, hence the slack.
			if waited := time.Since(retried); waited < retryDelay-5*time.Millisecond {
				t.Fatalf("retry delivered after %v, want at least %v", waited, retryDelay)
			}
		}
		if d.Job.Attempts != attempt+1 {
			t.Fatalf("attempts = %d, want %d", d.Job.Attempts, attempt+1)
		}

		cause := fmt.Errorf("attempt %d failed", attempt+1)
		if err := q.Retry(ctx, d, cause, delay); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		retried = time.Now()
		got := mustGet(t, q, job.ID)
		if got.Status != jobs.StatusQueued || got.Error != cause.Error() {
			t.Fatalf("after Retry: status %q error %q", got.Status, got.Error)
		}
	}

	d := fetchOne(t, q)
	if d.Job.Attempts != 3 {
		t.Fatalf("attempts = %d, want 3", d.Job.Attempts)
	}
	if err := q.DeadLetter(ctx, d, errors.New("gave up")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}

	got := mustGet(t, q, job.ID)
	if got.Status != jobs.StatusFailed || got.Error != "gave up" || got.Attempts != 3 {
		t.Fatalf("after DeadLetter: status %q error %q attempts %d", got.Status, got.Error, got.Attempts)
	}
	dead, err := rdb.XRange(ctx, name+":dead", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	if len(dead) != 1 {
		t.Fatalf("dead-letter stream holds %d entries, want 1", len(dead))
	}
	want := map[string]any{"id": job.ID, "type": "echo", "error": "gave up", "attempts": "3"}
	for k, v := range want {
		if dead[0].Values[k] != v {
			t.Errorf("dead-letter field %s = %v, want %v", k, dead[0].Values[k], v)
		}
	}
	assertDrained(t, rdb, name)
}

// Completions sent at the same time share script calls, and each caller still
// learns its own outcome; once Close has begun, Complete fails at once
// rather than waiting for a completer that has stopped.
func TestConcurrentCompletes(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	const total = 50

	for range total {
		mustEnqueue(t, q, `{}`)
	}
	var ds []jobs.Delivery
	for len(ds) < total {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := q.Fetch(ctx, total-len(ds))
		cancel()
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		ds = append(ds, got...)
	}

	var wg sync.WaitGroup
	errs := make(chan error, total)
	for _, d := range ds {
		wg.Go(func() { errs <- q.Complete(context.Background(), d) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	for _, d := range ds {
		if got := mustGet(t, q, d.Job.ID); got.Status != jobs.StatusDone {
			t.Fatalf("job %s status %q, want done", d.Job.ID, got.Status)
		}
	}
	assertDrained(t, redisClient(t, url), name)

	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := q.Complete(context.Background(), ds[0]); !errors.Is(err, errClosed) {
		t.Fatalf("Complete after Close = %v, want errClosed", err)
	}
}

// Two consumers hold deliveries of the same job; whichever finishes first
// decides, and the other's Complete, Retry or DeadLetter changes nothing.
func TestDeliveredTwiceDoneOnce(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	a := open(t, url, name, "a", 0)
	b := open(t, url, name, "b", 100*time.Millisecond)
	rdb := redisClient(t, url)
	ctx := context.Background()

	job := mustEnqueue(t, a, `{}`)
	first := fetchOne(t, a)
	time.Sleep(150 * time.Millisecond) // less than a's heartbeat interval
	second := fetchOne(t, b)
	if second.Job.ID != job.ID {
		t.Fatalf("b got %s, want %s", second.Job.ID, job.ID)
	}

	if err := a.Complete(ctx, first); err != nil {
		t.Fatalf("first Complete: %v", err)
	}
	done := mustGet(t, a, job.ID)

	if err := b.Complete(ctx, second); err != nil {
		t.Fatalf("second Complete: %v", err)
	}
	if err := b.Retry(ctx, second, errors.New("late"), 0); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if err := b.DeadLetter(ctx, second, errors.New("late")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}

	got := mustGet(t, a, job.ID)
	if got.Status != jobs.StatusDone || !got.UpdatedAt.Equal(done.UpdatedAt) || got.Error != "" {
		t.Fatalf("job changed after it was done: status %q updated %v (was %v) error %q",
			got.Status, got.UpdatedAt, done.UpdatedAt, got.Error)
	}
	if n := rdb.XLen(ctx, name+":dead").Val(); n != 0 {
		t.Fatalf("dead-letter stream holds %d entries, want 0", n)
	}
	assertDrained(t, rdb, name)
}

// A stream entry whose job is already done is acknowledged and skipped.
func TestFinishedJobSkipped(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	job := mustEnqueue(t, q, `{}`)
	if err := q.Complete(ctx, fetchOne(t, q)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: name + ":stream", Values: []string{"id", job.ID}})

	fetchNone(t, q, 1500*time.Millisecond)
	assertDrained(t, rdb, name)
}

// An entry whose job state is gone (expired or deleted) is dropped.
func TestMissingStateDropped(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)

	job := mustEnqueue(t, q, `{}`)
	rdb.Del(context.Background(), name+":job:"+job.ID)

	fetchNone(t, q, 1500*time.Millisecond)
	assertDrained(t, rdb, name)
}

// A job hash without attempts or updated_at, as a hand-written or older
// hash may be, starts with both fields added, in Redis and in the delivery.
func TestStartAddsMissingFields(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	job := mustEnqueue(t, q, `{}`)
	key := name + ":job:" + job.ID
	rdb.HDel(ctx, key, "attempts", "updated_at")

	d := fetchOne(t, q)
	if d.Job.Attempts != 1 || d.Job.Status != jobs.StatusRunning || d.Job.UpdatedAt.IsZero() {
		t.Fatalf("delivery: attempts %d status %q updated_at %v", d.Job.Attempts, d.Job.Status, d.Job.UpdatedAt)
	}
	if got := rdb.HGet(ctx, key, "attempts").Val(); got != "1" {
		t.Fatalf("attempts in Redis = %q, want 1", got)
	}
	if err := q.Complete(ctx, d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertDrained(t, rdb, name)
}

// An entry whose job key holds a string instead of a hash is dropped, and
// the jobs behind it are still delivered.
func TestWrongTypeKeyDropped(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	bad := mustEnqueue(t, q, `{}`)
	good := mustEnqueue(t, q, `{}`)
	rdb.Del(ctx, name+":job:"+bad.ID)
	rdb.Set(ctx, name+":job:"+bad.ID, "not a hash", 0)

	d := fetchOne(t, q)
	if d.Job.ID != good.ID {
		t.Fatalf("delivered job %s, want %s", d.Job.ID, good.ID)
	}
	if err := q.Complete(ctx, d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertDrained(t, rdb, name)
}

// When one job key of a completion batch holds a string, the other jobs of
// the batch are still marked done and every entry is acknowledged.
func TestCompleteBatchWithWrongTypeKey(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	for range 3 {
		mustEnqueue(t, q, `{}`)
	}
	fetchCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ds []jobs.Delivery
	for len(ds) < 3 {
		got, err := q.Fetch(fetchCtx, 3-len(ds))
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		ds = append(ds, got...)
	}
	badKey := name + ":job:" + ds[1].Job.ID
	rdb.Del(ctx, badKey)
	rdb.Set(ctx, badKey, "not a hash", 0)

	batch := make([]completion, len(ds))
	for i, d := range ds {
		batch[i] = completion{d: d, reply: make(chan error, 1)}
	}
	q.completeBatch(batch)
	for i, c := range batch {
		if err := <-c.reply; err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	for _, d := range []jobs.Delivery{ds[0], ds[2]} {
		if got := rdb.HGet(ctx, name+":job:"+d.Job.ID, "status").Val(); got != "done" {
			t.Errorf("job %s status = %q, want done", d.Job.ID, got)
		}
	}
	assertDrained(t, rdb, name)
}

// Retry and DeadLetter on a job whose key holds a string acknowledge the
// delivery and leave the key alone, as Complete does.
func TestSettleWrongTypeKey(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	settle := map[string]func(jobs.Delivery) error{
		"retry":       func(d jobs.Delivery) error { return q.Retry(ctx, d, errors.New("boom"), time.Millisecond) },
		"dead-letter": func(d jobs.Delivery) error { return q.DeadLetter(ctx, d, errors.New("boom")) },
	}
	for op, call := range settle {
		mustEnqueue(t, q, `{}`)
		d := fetchOne(t, q)
		key := name + ":job:" + d.Job.ID
		rdb.Del(ctx, key)
		rdb.Set(ctx, key, "not a hash", 0)
		if err := call(d); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if got := rdb.Get(ctx, key).Val(); got != "not a hash" {
			t.Errorf("%s changed the key to %q", op, got)
		}
	}
	if n := rdb.ZCard(ctx, name+":delayed").Val(); n != 0 {
		t.Errorf("delayed set holds %d jobs, want 0", n)
	}
	if n := rdb.XLen(ctx, name+":dead").Val(); n != 0 {
		t.Errorf("dead-letter stream holds %d entries, want 0", n)
	}
	assertDrained(t, rdb, name)
}

// A job hash this package cannot read is dead-lettered at once instead of
// coming back after every ClaimIdle.
func TestUnreadableJobDeadLettered(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	ctx := context.Background()

	job := mustEnqueue(t, q, `{}`)
	rdb.HSet(ctx, name+":job:"+job.ID, "created_at", "yesterday")

	fetchNone(t, q, 1500*time.Millisecond)
	if got, err := rdb.HGet(ctx, name+":job:"+job.ID, "status").Result(); err != nil || got != "failed" {
		t.Fatalf("status = %q, %v; want failed", got, err)
	}
	if n := rdb.XLen(ctx, name+":dead").Val(); n != 1 {
		t.Fatalf("dead-letter stream holds %d entries, want 1", n)
	}
	assertDrained(t, rdb, name)
}

// When the stream and its group disappear (Redis restarted without
// persistence), Fetch recreates the group and still delivers jobs enqueued
// since.
func TestGroupRecreated(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	q := open(t, url, name, "a", 0)
	rdb := redisClient(t, url)
	if err := q.ensureGroup(context.Background()); err != nil {
		t.Fatalf("creating the group: %v", err)
	}

	rdb.Del(context.Background(), name+":stream")
	job := mustEnqueue(t, q, `{}`)

	d := fetchOne(t, q)
	if d.Job.ID != job.ID {
		t.Fatalf("fetched %s, want %s", d.Job.ID, job.ID)
	}
	if err := q.Complete(context.Background(), d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	assertDrained(t, rdb, name)
}

func TestFetchHonoursCancel(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	q := open(t, url, testName(t, url), "a", 0)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	ds, err := q.Fetch(ctx, 1)
	if !errors.Is(err, context.Canceled) || len(ds) != 0 {
		t.Fatalf("Fetch = %d deliveries, %v; want none, context.Canceled", len(ds), err)
	}
	if took := time.Since(start); took > fetchBlock+time.Second {
		t.Fatalf("Fetch returned %v after cancel, want within about %v", took, fetchBlock)
	}
}

// tally counts how often each job ran.
type tally struct {
	mu   sync.Mutex
	runs map[string]int
}

func (t *tally) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.runs[id]++
}

// count returns how many distinct jobs ran and how many runs there were.
func (t *tally) count() (jobsRun, runs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.runs {
		runs += n
	}
	return len(t.runs), runs
}

// worker consumes from q until ctx ends, and finishes every delivery it was
// handed even after ctx ends, as a draining worker does.
func worker(ctx context.Context, q *Queue, ran *tally, errs chan<- error) {
	for ctx.Err() == nil {
		ds, err := q.Fetch(ctx, 4)
		if err != nil && ctx.Err() == nil {
			errs <- err
			return
		}
		for _, d := range ds {
			ran.add(d.Job.ID)
			time.Sleep(time.Millisecond)
			if err := q.Complete(context.WithoutCancel(ctx), d); err != nil {
				errs <- err
				return
			}
		}
	}
}

// Stopping consumers midway and starting new ones loses no job and runs none
// twice: every delivery handed out before the stop is finished by its
// consumer, and the rest stay in the stream for the next ones.
func TestCleanShutdownLosesNothing(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	name := testName(t, url)
	const total = 200

	producer := open(t, url, name, "producer", 0)
	ids := make([]string, 0, total)
	for i := range total {
		ids = append(ids, mustEnqueue(t, producer, fmt.Sprintf(`{"n":%d}`, i)).ID)
	}

	ran := &tally{runs: make(map[string]int)}
	run := func(consumers []string, stopAt int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errs := make(chan error, 2*len(consumers))
		var wg sync.WaitGroup
		for _, c := range consumers {
			q := open(t, url, name, c, 0)
			for range 2 {
				wg.Go(func() { worker(ctx, q, ran, errs) })
			}
		}

		deadline := time.After(30 * time.Second)
		for {
			if n, _ := ran.count(); n >= stopAt {
				break
			}
			select {
			case err := <-errs:
				t.Fatalf("worker: %v", err)
			case <-deadline:
				n, _ := ran.count()
				t.Fatalf("only %d of %d jobs ran within 30s", n, stopAt)
			case <-time.After(5 * time.Millisecond):
			}
		}
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("worker: %v", err)
		}
	}

	run([]string{"first-1", "first-2", "first-3"}, total/3)
	if n, _ := ran.count(); n >= total {
		t.Fatalf("all %d jobs ran before the stop; the test stopped too late", n)
	}
	run([]string{"second-1", "second-2"}, total)

	jobsRun, runsTotal := ran.count()
	if jobsRun != total || runsTotal != total {
		t.Fatalf("%d jobs ran %d times, want %d jobs once each", jobsRun, runsTotal, total)
	}
	for _, id := range ids {
		got := mustGet(t, producer, id)
		if got.Status != jobs.StatusDone || got.Attempts != 1 {
			t.Fatalf("job %s: status %q attempts %d, want done after 1", id, got.Status, got.Attempts)
		}
	}
	assertDrained(t, redisClient(t, url), name)
}

// Fetch, Enqueue and Ping fail, rather than hang or spin, when nothing
// listens at the Redis address. Needs no server.
func TestFailsWhileRedisDown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	q, err := newQueue(Options{URL: "redis://" + addr + "/0", Name: "down"})
	if err != nil {
		t.Fatalf("newQueue: %v", err)
	}
	defer func() { _ = q.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := q.Fetch(ctx, 1); err == nil || ctx.Err() != nil {
		t.Fatalf("Fetch error = %v after %v, want a connection error", err, time.Since(start))
	}
	t.Logf("Fetch failed after %v", time.Since(start))
	if _, err := q.Enqueue(ctx, "echo", nil); err == nil {
		t.Fatal("Enqueue succeeded with Redis down")
	}
	if err := q.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with Redis down")
	}
}

// New succeeds while nothing listens at the Redis address, so a process can
// start during a Redis outage; once Redis is up, the same Queue enqueues,
// creates its consumer group and delivers. Starts its own redis-server.
func TestNewWhileRedisDown(t *testing.T) {
	t.Parallel()
	redisURL(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	q := open(t, "redis://"+addr+"/0", "down-at-start", "a", 0)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded before redis-server started")
	}
	if _, err := q.Fetch(ctx, 1); err == nil || ctx.Err() != nil {
		t.Fatalf("Fetch before redis-server started: error %v, want a connection error", err)
	}

	startRedis(t, bin, t.TempDir(), port)
	if err := q.Ping(ctx); err != nil {
		t.Fatalf("Ping after redis-server started: %v", err)
	}
	job := mustEnqueue(t, q, `{"n":1}`)
	d := fetchOne(t, q)
	if d.Job.ID != job.ID || d.Job.Attempts != 1 {
		t.Fatalf("fetched job %s attempt %d, want %s attempt 1", d.Job.ID, d.Job.Attempts, job.ID)
	}
	if err := q.Complete(ctx, d); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := mustGet(t, q, job.ID); got.Status != jobs.StatusDone {
		t.Fatalf("after Complete: status %q, want done", got.Status)
	}
}

// Jobs enqueued and deliveries pending survive a crash of a Redis that runs
// with appendonly, and the same Queue carries on once Redis is back. Starts
// its own redis-server.
func TestSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	redisURL(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	url := "redis://" + addr + "/0"

	server := startRedis(t, bin, dir, port)
	a := open(t, url, "restart", "a", 0)
	const total = 20
	for i := range total {
		mustEnqueue(t, a, fmt.Sprintf(`{"n":%d}`, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ds, err := a.Fetch(ctx, 1) // still running on a when Redis dies
	if err != nil || len(ds) != 1 {
		t.Fatalf("Fetch = %d deliveries, %v; want 1", len(ds), err)
	}
	unfinished := ds[0]

	// SIGKILL: no save at shutdown, only what the append-only file holds.
	if err := server.Process.Kill(); err != nil {
		t.Fatalf("killing redis-server: %v", err)
	}
	_ = server.Wait()

	start := time.Now()
	if _, err := a.Fetch(ctx, 1); err == nil || ctx.Err() != nil {
		t.Fatalf("Fetch with Redis down: error %v, want a connection error", err)
	}
	t.Logf("Fetch with Redis down failed after %v", time.Since(start))

	startRedis(t, bin, dir, port)
	mustEnqueue(t, a, `{"n":"after restart"}`) // the old client reconnects
	if err := a.Close(); err != nil {          // the worker holding a job dies
		t.Fatalf("Close: %v", err)
	}

	b := open(t, url, "restart", "b", 300*time.Millisecond)
	seen := map[string]bool{}
	for len(seen) < total+1 {
		ds, err := b.Fetch(ctx, 10)
		if err != nil {
			t.Fatalf("Fetch after restart: %v", err)
		}
		for _, d := range ds {
			if seen[d.Job.ID] {
				t.Fatalf("job %s delivered twice", d.Job.ID)
			}
			seen[d.Job.ID] = true
			if err := b.Complete(ctx, d); err != nil {
				t.Fatalf("Complete: %v", err)
			}
		}
	}
	if !seen[unfinished.Job.ID] {
		t.Fatalf("pending job %s was not redelivered", unfinished.Job.ID)
	}
}

// startRedis runs redis-server in the foreground with fsync on every write,
// and stops it when the test ends.
func startRedis(t *testing.T, bin, dir, port string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always")
	cmd.Stdout = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", port), MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	for range 100 {
		if rdb.Ping(context.Background()).Err() == nil {
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server on port %s did not answer", port)
	return nil
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestBadURLHidesPassword(t *testing.T) {
	t.Parallel()
	_, err := New(Options{URL: "redis://user:s3cret@127.0.0.1:99x/0"})
	if err == nil {
		t.Fatal("New accepted a malformed URL")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %q shows the password", err)
	}
}
