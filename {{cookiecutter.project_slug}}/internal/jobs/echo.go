package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// EchoType is the type name of the built-in echo job.
const EchoType = "echo"

// maxLoggedPayload bounds the payload bytes an echo log line carries; the
// API accepts bodies of up to MAX_BODY_BYTES.
const maxLoggedPayload = 1024

// errEchoFail is returned for payloads that ask the echo job to fail.
var errEchoFail = errors.New("echo job failed on request")

// echoControls are optional payload fields that make the echo job useful for
// trying out timeouts, retries and shutdown: {"sleep": "2s"} works for two
// seconds, {"fail": true} fails every attempt.
type echoControls struct {
	Sleep string `json:"sleep"`
	Fail  bool   `json:"fail"`
}

// Echo logs a job's payload; it is the template's example job.
type Echo struct {
	log   *slog.Logger
	count prometheus.Counter
}

// NewEcho returns the echo handler, with echo_jobs_total registered with reg
// (or unregistered when reg is nil).
func NewEcho(log *slog.Logger, reg prometheus.Registerer) *Echo {
	return &Echo{
		log: log,
		count: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "echo_jobs_total",
			Help: "Echo jobs that completed.",
		}),
	}
}

// Handle logs the payload at info level with the job id and counts the job.
func (e *Echo) Handle(ctx context.Context, job Job) error {
	var ctl echoControls
	// Payloads that are not objects, or lack the fields, carry no controls.
	_ = json.Unmarshal(job.Payload, &ctl)

	if ctl.Sleep != "" {
		d, err := time.ParseDuration(ctl.Sleep)
		if err != nil {
			return fmt.Errorf("parsing sleep %q: %w", ctl.Sleep, err)
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if ctl.Fail {
		return errEchoFail
	}

	e.log.LogAttrs(ctx, slog.LevelInfo, "echo",
		slog.String("job_id", job.ID),
		slog.Int("attempt", job.Attempts),
		payloadAttr(job.Payload),
	)
	e.count.Inc()
	return nil
}

func payloadAttr(p json.RawMessage) slog.Attr {
	if len(p) > maxLoggedPayload {
		return slog.String("payload_truncated", string(p[:maxLoggedPayload]))
	}
	return slog.Any("payload", p)
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleeping: %w", ctx.Err())
	}
}
