package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadQueueDefaults(t *testing.T) {
	q, err := LoadQueue(env(nil))
	if err != nil {
		t.Fatalf("LoadQueue: %v", err)
	}
	want := Queue{
		Name:         "jobs",
		Concurrency:  4,
		MaxAttempts:  5,
		JobTimeout:   30 * time.Second,
		RetryBackoff: time.Second,
		ClaimIdle:    30 * time.Second,
	}
	if q != want {
		t.Errorf("LoadQueue() = %+v, want %+v", q, want)
	}
}

func TestLoadQueueRedisURL(t *testing.T) {
	for _, url := range []string{"redis://redis:6379/0", "rediss://user:pw@cache.example.com:6380", "unix:///run/redis.sock"} {
		q, err := LoadQueue(env(map[string]string{"REDIS_URL": url}))
		if err != nil {
			t.Errorf("LoadQueue(REDIS_URL=%q): %v", url, err)
			continue
		}
		if q.RedisURL != url {
			t.Errorf("RedisURL = %q, want %q", q.RedisURL, url)
		}
	}
}

func TestLoadQueueInvalid(t *testing.T) {
	tests := []struct {
		name, variable, value, want string
	}{
		{"redis scheme", "REDIS_URL", "http://redis:6379", "redis://, rediss://"},
		{"redis host", "REDIS_URL", "redis:///0", "want a host"},
		{"queue name", "QUEUE_NAME", "my queue", "QUEUE_NAME"},
		{"concurrency zero", "WORKER_CONCURRENCY", "0", "integer from 1 to 1024"},
		{"attempts", "JOB_MAX_ATTEMPTS", "many", "integer from 1 to 100"},
		{"job timeout", "JOB_TIMEOUT", "soon", "duration"},
		{"claim idle", "JOB_CLAIM_IDLE", "10ms", "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadQueue(env(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatalf("LoadQueue(%s=%q) succeeded, want an error", tt.variable, tt.value)
			}
			for _, part := range []string{tt.variable, tt.want} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestLoadQueueRedactsPassword(t *testing.T) {
	_, err := LoadQueue(env(map[string]string{"REDIS_URL": "http://user:s3cret@redis:6379"}))
	if err == nil {
		t.Fatal("LoadQueue succeeded, want an error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

func FuzzLoadQueue(f *testing.F) {
	for _, seed := range []string{"", "redis://redis:6379/0", "redis://:pw@[::1]:6379", "%zz", "jobs", "4", "0", "1s"} {
		f.Add("REDIS_URL", seed)
		f.Add("QUEUE_NAME", seed)
		f.Add("WORKER_CONCURRENCY", seed)
		f.Add("JOB_RETRY_BACKOFF", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		q, err := LoadQueue(env(map[string]string{name: value}))
		if err != nil {
			return
		}
		if q.Concurrency < 1 || q.MaxAttempts < 1 || q.JobTimeout <= 0 || q.RetryBackoff <= 0 || q.Name == "" {
			t.Errorf("LoadQueue(%s=%q) accepted out-of-range config %+v", name, value, q)
		}
	})
}
