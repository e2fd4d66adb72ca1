package worker

import (
	"log/slog"
	"sync"
	"time"
)

// rateLimitedLog logs an error at most once per interval across all fetch
// loops and reports how many it dropped in between.
type rateLimitedLog struct {
	log      *slog.Logger
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newRateLimitedLog(log *slog.Logger, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{log: log, interval: interval}
}

func (l *rateLimitedLog) Error(msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()

	l.log.Error(msg, append(args, "suppressed", suppressed)...)
}
