package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Queue holds the settings of the job queue and the worker.
type Queue struct {
	// RedisURL is empty when the API runs the in-memory queue in-process.
	RedisURL     string
	Name         string
	Concurrency  int
	MaxAttempts  int
	JobTimeout   time.Duration
	RetryBackoff time.Duration // first retry delay, doubled per attempt
	ClaimIdle    time.Duration // idle time after which an unacknowledged job is redelivered
}

// queueNamePattern keeps QUEUE_NAME usable as part of a Redis key.
var queueNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// LoadQueue reads and validates the queue and worker settings.
func LoadQueue(getenv func(string) string) (Queue, error) {
	p := parser{getenv: getenv}
	q := Queue{
		RedisURL:     p.redisURL("REDIS_URL"),
		Name:         p.queueName("QUEUE_NAME", "jobs"),
		Concurrency:  p.integer("WORKER_CONCURRENCY", 4, 1, 1024),
		MaxAttempts:  p.integer("JOB_MAX_ATTEMPTS", 5, 1, 100),
		JobTimeout:   p.duration("JOB_TIMEOUT", 30*time.Second, time.Millisecond),
		RetryBackoff: p.duration("JOB_RETRY_BACKOFF", time.Second, time.Millisecond),
		ClaimIdle:    p.duration("JOB_CLAIM_IDLE", 30*time.Second, time.Second),
	}
	return q, p.err()
}

// redisURL checks the scheme and host of REDIS_URL. The message shows the URL
// with its password redacted, because config errors end up in logs.
func (p *parser) redisURL(name string) string {
	raw := p.lookup(name)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("invalid %s: not a URL; want redis://[user:password@]host:port/db", name))
		return ""
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
		p.invalid(name, u.Redacted(), "want a redis://, rediss:// or unix:// URL")
	case u.Scheme != "unix" && u.Host == "":
		p.invalid(name, u.Redacted(), "want a host, such as redis://redis:6379/0")
	}
	return raw
}

func (p *parser) queueName(name, def string) string {
	raw := p.lookup(name)
	if raw == "" {
		return def
	}
	if !queueNamePattern.MatchString(raw) {
		p.invalid(name, raw, "want 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
		return def
	}
	return raw
}
