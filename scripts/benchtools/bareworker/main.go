// Command bareworker is the baseline of the worker benchmark: the smallest
// Redis Streams consumer that still does the work every stream consumer
// must do, XREADGROUP then XACK per entry, with no job state, retries,
// metrics or job lifecycle logs. Each entry gets the work of the service's
// echo job: its payload is decoded for the echo controls and logged as one
// JSON line at info level. It exits once it has acknowledged -expect entries
// and prints a JSON report.
//
//	bareworker -redis redis://127.0.0.1:18620/0 -stream bench -fill 20000
//	bareworker -redis redis://127.0.0.1:18620/0 -stream bench -expect 20000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const group = "bareworker"

type report struct {
	Acked         int64   `json:"acked"`
	Filled        int64   `json:"filled,omitempty"`
	ElapsedSec    float64 `json:"elapsed_s"`
	ThroughputJPS float64 `json:"throughput_jps"`
	// DoneUnixNano is the wall-clock time of the -expect'th acknowledgement,
	// in nanoseconds since the Unix epoch. It lets a caller stop its clock
	// there rather than at exit, which comes up to one blocked XREADGROUP
	// (100 ms) later.
	DoneUnixNano int64 `json:"done_unix_ns,omitempty"`
}

func main() {
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0",
		"Redis URL (loopback only)")
	stream := flag.String("stream", "bareworker", "stream key")
	fill := flag.Int64("fill", 0, "add this many entries to the stream, then exit")
	payload := flag.String("payload", `{"message":"hello"}`,
		"JSON payload of each entry added by -fill")
	expect := flag.Int64("expect", 0, "exit after acknowledging this many entries")
	concurrency := flag.Int("concurrency", 4, "number of consumer goroutines")
	batch := flag.Int64("batch", 1, "XREADGROUP COUNT of each read")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	logPath := flag.String("log", os.DevNull, "file that the per-entry log lines go to")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rdb, err := connect(*redisURL)
	if err != nil {
		fail(err)
	}
	defer rdb.Close()

	var rep report
	start := time.Now()
	switch {
	case *fill > 0:
		rep.Filled, err = fillStream(ctx, rdb, *stream, *payload, *fill)
	case *expect > 0:
		var logFile *os.File
		if logFile, err = os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			fail(err)
		}
		defer logFile.Close()
		log := slog.New(slog.NewJSONHandler(logFile, nil))
		rep.Acked, rep.DoneUnixNano, err = consume(ctx, rdb, log, *stream, *expect, *concurrency, *batch)
	default:
		err = errors.New("missing -fill or -expect")
	}
	if err != nil {
		fail(err)
	}
	rep.ElapsedSec = time.Since(start).Seconds()
	rep.ThroughputJPS = float64(rep.Acked) / rep.ElapsedSec
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bareworker:", err)
	os.Exit(1)
}

func connect(raw string) (*redis.Client, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing -redis: %w", err)
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("invalid -redis %q: the host must be a loopback address", raw)
	}
	return redis.NewClient(opts), nil
}

// fillStream adds n entries in pipelined batches, each a JSON job like the
// ones the service enqueues.
func fillStream(ctx context.Context, rdb *redis.Client, stream, payload string,
	n int64) (int64, error) {
	const chunk = 1000
	var added int64
	for added < n {
		pipe := rdb.Pipeline()
		for i := int64(0); i < chunk && added+i < n; i++ {
			job := fmt.Sprintf(`{"id":"bench-%d","type":"echo","payload":%s}`, added+i, payload)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"job", job}})
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return added, fmt.Errorf("adding entries: %w", err)
		}
		added += int64(len(cmds))
	}
	return added, nil
}

// consumer is the state that all consumer goroutines share.
type consumer struct {
	rdb    *redis.Client
	log    *slog.Logger
	stream string
	batch  int64
	expect int64
	acked  atomic.Int64
	doneAt atomic.Int64 // Unix nanoseconds of the expect'th acknowledgement
	stop   context.CancelFunc
}

// consume runs concurrency loops of XREADGROUP and XACK until expect entries
// are acknowledged in total. It returns the count and the time of the
// expect'th acknowledgement in Unix nanoseconds.
func consume(ctx context.Context, rdb *redis.Client, log *slog.Logger, stream string,
	expect int64, concurrency int, batch int64) (int64, int64, error) {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return 0, 0, fmt.Errorf("creating consumer group: %w", err)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	c := &consumer{rdb: rdb, log: log, stream: stream, batch: batch, expect: expect, stop: stop}
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			if err := c.loop(ctx, fmt.Sprintf("c%d", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return c.acked.Load(), 0, err
	}
	return c.acked.Load(), c.doneAt.Load(), nil
}

// loop reads and acknowledges entries as one consumer of the group until the
// shared count reaches expect.
func (c *consumer) loop(ctx context.Context, name string) error {
	for ctx.Err() == nil {
		res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    group,
			Consumer: name,
			Streams:  []string{c.stream, ">"},
			Count:    c.batch,
			Block:    100 * time.Millisecond,
		}).Result()
		if errors.Is(err, redis.Nil) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading stream: %w", err)
		}
		for _, msg := range res[0].Messages {
			c.echo(ctx, msg)
			if err := c.rdb.XAck(ctx, c.stream, group, msg.ID).Err(); err != nil {
				return fmt.Errorf("acknowledging %s: %w", msg.ID, err)
			}
			if n := c.acked.Add(1); n >= c.expect {
				if n == c.expect {
					c.doneAt.Store(time.Now().UnixNano())
				}
				c.stop()
			}
		}
	}
	return nil
}

// echo does what the service's echo job does with an entry: it decodes the
// payload for the sleep and fail controls, which the benchmark never sets,
// and logs the payload with the job id.
func (c *consumer) echo(ctx context.Context, msg redis.XMessage) {
	var job struct {
		ID      string          `json:"id"`
		Payload json.RawMessage `json:"payload"`
	}
	if raw, ok := msg.Values["job"].(string); ok {
		_ = json.Unmarshal([]byte(raw), &job)
	}
	var controls struct {
		Sleep string `json:"sleep"`
		Fail  bool   `json:"fail"`
	}
	_ = json.Unmarshal(job.Payload, &controls)
	c.log.LogAttrs(ctx, slog.LevelInfo, "echo",
		slog.String("job_id", job.ID),
		slog.Int("attempt", 1),
		slog.Any("payload", job.Payload),
	)
}
