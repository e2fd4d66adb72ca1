package worker

import (
	"context"
	"math/rand/v2"
	"time"
)

const (
	// maxRetryDelay caps the exponential retry backoff, so that a job
	// with many attempts is still retried within minutes.
	maxRetryDelay = 5 * time.Minute

	// Fetch errors mean the queue backend is unreachable; retry quickly
	// at first, then settle at maxFetchDelay.
	minFetchDelay = 100 * time.Millisecond
	maxFetchDelay = 5 * time.Second

	// fetchErrorLogInterval limits repeated fetch error logs while the
	// backend stays down.
	fetchErrorLogInterval = 30 * time.Second
)

// retryDelay returns the delay before the retry that follows attempt:
// base doubled per earlier attempt, capped at maxRetryDelay, then jittered
// to between half and all of that, so that jobs that failed together do
// not retry together.
func retryDelay(base time.Duration, attempt int) time.Duration {
	return jitter(exponential(base, attempt, maxRetryDelay))
}

func fetchBackoff(failures int) time.Duration {
	return jitter(exponential(minFetchDelay, failures, maxFetchDelay))
}

// exponential returns base * 2^(n-1), at most limit.
func exponential(base time.Duration, n int, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1) //nolint:gosec // jitter needs no cryptographic randomness
}

// sleep waits for d or until ctx ends, and returns ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
