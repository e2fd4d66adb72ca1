// Package redisqueue is the Redis-backed job queue: the API enqueues through
// it and the worker consumes from it. It needs Redis 6.2 or later (for
// XAUTOCLAIM).
//
// Every key starts with the queue name (QUEUE_NAME, "jobs" by default):
//
//	<name>:stream   stream of job ids waiting for or held by a worker; the
//	                consumer group "<name>" reads it
//	<name>:delayed  sorted set of job ids waiting for a retry, scored by the
//	                Unix time in milliseconds at which they are due
//	<name>:dead     stream of dead-lettered jobs (id, type, error, attempts,
//	                failed_at), trimmed to about 10000 entries
//	<name>:job:<id> hash with the job's state (id, type, payload, status,
//	                attempts, error, created_at, updated_at); it expires
//	                Options.Retention after the job is done or failed
//
// A stream entry carries only the job id; the hash is the single source of
// truth for a job's state. Entries are deleted once acknowledged, so the
// stream holds only work that is not finished yet.
//
// Delivery is at least once. An entry stays in the group's pending list until
// a worker completes, retries or dead-letters it. If the worker dies first,
// another worker claims the entry once it has been idle for ClaimIdle. The
// claim scan runs every min(ClaimIdle/4, 1s), so the handover can come that
// much later. Each state change that touches more than one key runs as one
// Lua script, so a crash between two commands cannot leave a job
// acknowledged but not rescheduled, or marked done twice.
//
// Durability depends on the Redis configuration. With appendonly yes a
// restart keeps every enqueued job and every pending delivery. The default
// appendfsync everysec can lose about the last second of writes when the host
// crashes, and appendfsync always loses none. Without persistence a restart
// empties the queue, and Fetch recreates the consumer group so the workers
// carry on with new jobs.
//
// NOTE: the keys share no hash tag, so the multi-key scripts fail on Redis
// Cluster unless the queue name is itself a hash tag such as "{jobs}".
package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"{{ cookiecutter.module_path }}/internal/jobs"
)

// Defaults for the zero values of Options.
const (
	defaultName      = "jobs"
	defaultClaimIdle = 30 * time.Second
	defaultRetention = 7 * 24 * time.Hour
)

// Options configures a Queue. Only URL is required.
type Options struct {
	// URL is a redis:// or rediss:// URL as redis.ParseURL accepts it.
	URL string
	// Name prefixes every key and names the consumer group. Default "jobs".
	Name string
	// ClaimIdle is how long a delivery may go without a heartbeat before
	// another consumer takes it over. Default 30s.
	ClaimIdle time.Duration
	// Retention is how long the state of a done or failed job stays
	// readable through Get. Default 7 days.
	Retention time.Duration
	// Consumer names this process in the consumer group. Default
	// "<hostname>-<pid>", which is unique per pod and per process.
	Consumer string
	// Logger receives the queue's own events. Default slog.Default().
	Logger *slog.Logger
}

// Queue is a job queue on Redis Streams. It implements jobs.Queue and
// jobs.Consumer and is safe for concurrent use.
type Queue struct {
	rdb       *redis.Client
	log       *slog.Logger
	keys      keys
	group     string
	consumer  string
	claimIdle time.Duration
	retention time.Duration

	// upkeepEvery is how often Fetch claims idle entries and looks for due
	// retries: min(ClaimIdle/4, 1s).
	upkeepEvery time.Duration

	// claimMu guards claimCursor, where the next XAUTOCLAIM scan of the
	// pending list starts, so that a long list is scanned across fetches,
	// and nextClaim, when the next scan is due.
	claimMu     sync.Mutex
	claimCursor string
	nextClaim   time.Time

	// nextPromote is when the delayed set next contains a due retry, as far as
	// this process knows, in Unix nanoseconds. Retry lowers it without
	// waiting for a Fetch that holds claimMu.
	nextPromote atomic.Int64

	// groupReady is set once this process has created or found the
	// consumer group, and cleared when Redis reports it missing.
	groupReady atomic.Bool

	// inflightMu guards inflight, the receipts this process has fetched and
	// not yet finished. The heartbeat keeps them from looking abandoned.
	inflightMu sync.Mutex
	inflight   map[string]struct{}

	// completions carries Complete calls to the completer goroutine, and
	// closing is closed when Close begins.
	completions chan completion
	closing     <-chan struct{}

	stop      context.CancelFunc
	beating   sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ jobs.Queue    = (*Queue)(nil)
	_ jobs.Consumer = (*Queue)(nil)
)

// keys are the Redis key names of one queue, as the package comment lists them.
type keys struct {
	prefix  string
	stream  string
	delayed string
	dead    string
}

func newKeys(name string) keys {
	return keys{
		prefix:  name + ":job:",
		stream:  name + ":stream",
		delayed: name + ":delayed",
		dead:    name + ":dead",
	}
}

func (k keys) job(id string) string { return k.prefix + id }

// New builds the queue and starts its goroutines: the heartbeat of in-flight
// deliveries and the completer. It does no network I/O: it fails only on an
// invalid URL, so a process can start while Redis is unreachable and serve
// its probes (readiness reports the queue unavailable until Ping succeeds).
// go-redis dials on first use and redials after a lost connection, and Fetch
// creates the stream and its consumer group on first use.
func New(opts Options) (*Queue, error) {
	q, err := newQueue(opts)
	if err != nil {
		return nil, err
	}

	hbCtx, stop := context.WithCancel(context.Background())
	q.stop = stop
	q.closing = hbCtx.Done()
	q.beating.Go(func() { q.heartbeat(hbCtx) })
	q.beating.Go(func() { q.completer(hbCtx) })

	return q, nil
}

// newQueue applies the defaults and builds the client without touching the
// network. go-redis dials on first use and redials after a lost connection.
func newQueue(opts Options) (*Queue, error) {
	if opts.URL == "" {
		return nil, errors.New("missing redis url")
	}
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		// A *url.Error quotes the whole URL, password included, so only its
		// reason goes into the error.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parsing redis url: %w", err)
	}

	if opts.Name == "" {
		opts.Name = defaultName
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = defaultClaimIdle
	}
	if opts.Retention <= 0 {
		opts.Retention = defaultRetention
	}
	if opts.Consumer == "" {
		opts.Consumer = defaultConsumer()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	q := Queue{
		rdb:         redis.NewClient(ropts),
		log:         opts.Logger.With("queue", opts.Name),
		keys:        newKeys(opts.Name),
		group:       opts.Name,
		consumer:    opts.Consumer,
		claimIdle:   opts.ClaimIdle,
		retention:   opts.Retention,
		upkeepEvery: max(min(opts.ClaimIdle/4, time.Second), time.Millisecond),
		claimCursor: "0-0",
		inflight:    make(map[string]struct{}),
		completions: make(chan completion),
		stop:        func() {},
	}
	return &q, nil
}

func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// ensureGroup creates the consumer group, and the stream with it. The group
// starts at id 0 rather than $, so jobs enqueued before the first worker ran,
// or before the group was lost, are still delivered. Finished entries are
// deleted, so starting at 0 replays nothing.
func (q *Queue) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.keys.stream, q.group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("creating consumer group: %w", err)
	}
	q.groupReady.Store(true)
	return nil
}

// Close stops the heartbeat, leaves the consumer group if this consumer holds
// no pending deliveries, and closes the connections. A consumer that still
// holds deliveries stays in the group so another one can claim them.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		q.stop()
		q.beating.Wait()

		// A process that never fetched (the API) never joined the group.
		if q.groupReady.Load() {
			q.leaveGroup()
		}
		if cerr := q.rdb.Close(); cerr != nil {
			err = fmt.Errorf("closing redis client: %w", cerr)
		}
	})
	return err
}

func (q *Queue) leaveGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys := []string{q.keys.stream}
	left, err := leaveScript.Run(ctx, q.rdb, keys, q.group, q.consumer).Int()
	switch {
	case err != nil:
		q.log.Warn("leaving consumer group failed", "consumer", q.consumer, "error", err)
	case left == 0:
		q.log.Info("consumer kept in group, deliveries pending", "consumer", q.consumer)
	}
}

// Ping sends PING and returns an error if Redis does not reply.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pinging redis: %w", err)
	}
	return nil
}

// Enqueue stores a new job and appends it to the stream in one MULTI/EXEC
// transaction, so a job is never visible without being queued or the other
// way round. The hash has no expiry until the job finishes.
func (q *Queue) Enqueue(ctx context.Context, jobType string, payload json.RawMessage) (jobs.Job, error) {
	now := time.Now().UTC()
	job := jobs.Job{
		ID:        jobs.NewID(now),
		Type:      jobType,
		Payload:   payload,
		Status:    jobs.StatusQueued,
		CreatedAt: now,
		UpdatedAt: now,
	}

	_, err := q.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, q.keys.job(job.ID), jobFields(job))
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: q.keys.stream, Values: []string{"id", job.ID}})
		return nil
	})
	if err != nil {
		return jobs.Job{}, fmt.Errorf("enqueueing job: %w", err)
	}
	return job, nil
}

// Get returns the job's current state, or jobs.ErrNotFound if the id is
// unknown or its state has expired.
func (q *Queue) Get(ctx context.Context, id string) (jobs.Job, error) {
	fields, err := q.rdb.HGetAll(ctx, q.keys.job(id)).Result()
	if err != nil {
		return jobs.Job{}, fmt.Errorf("reading job %s: %w", id, err)
	}
	if len(fields) == 0 {
		return jobs.Job{}, jobs.ErrNotFound
	}
	return parseJob(fields)
}

// jobFields is the hash form of a job.
func jobFields(j jobs.Job) map[string]any {
	return map[string]any{
		"id":         j.ID,
		"type":       j.Type,
		"payload":    string(j.Payload),
		"status":     string(j.Status),
		"attempts":   j.Attempts,
		"error":      j.Error,
		"created_at": j.CreatedAt.Format(time.RFC3339Nano),
		"updated_at": j.UpdatedAt.Format(time.RFC3339Nano),
	}
}

// parseJob reads a job back from its hash fields.
func parseJob(f map[string]string) (jobs.Job, error) {
	j := jobs.Job{
		ID:     f["id"],
		Type:   f["type"],
		Status: jobs.Status(f["status"]),
		Error:  f["error"],
	}
	if p := f["payload"]; p != "" {
		j.Payload = json.RawMessage(p)
	}

	var err error
	if j.Attempts, err = strconv.Atoi(f["attempts"]); err != nil {
		return jobs.Job{}, fmt.Errorf("parsing attempts of job %s: %w", j.ID, err)
	}
	if j.CreatedAt, err = time.Parse(time.RFC3339Nano, f["created_at"]); err != nil {
		return jobs.Job{}, fmt.Errorf("parsing created_at of job %s: %w", j.ID, err)
	}
	if j.UpdatedAt, err = time.Parse(time.RFC3339Nano, f["updated_at"]); err != nil {
		return jobs.Job{}, fmt.Errorf("parsing updated_at of job %s: %w", j.ID, err)
	}
	return j, nil
}

// RouteClientLogs sends the messages go-redis logs itself (failed dials,
// pool trouble) to log, so that they come out as JSON like every other line.
// go-redis keeps one logger for the whole process, so call this once, from
// main, rather than per Queue.
//
// While Redis is down go-redis logs every failed dial of every connection,
// so at most one line per clientLogInterval gets through, with the count of
// the lines dropped since the previous one.
func RouteClientLogs(log *slog.Logger) {
	redis.SetLogger(&clientLogger{log: log})
}

const clientLogInterval = 10 * time.Second

type clientLogger struct {
	log *slog.Logger

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	if time.Since(l.last) < clientLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = time.Now(), 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, "redis client", "message", fmt.Sprintf(format, v...), "suppressed", suppressed)
}

// stamp formats the time a state change is recorded with.
func stamp() string { return time.Now().UTC().Format(time.RFC3339Nano) }
