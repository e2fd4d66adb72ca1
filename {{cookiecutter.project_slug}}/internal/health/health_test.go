package health

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func status(h http.Handler) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	return w.Code
}

func TestProbeLifecycle(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	if got := status(p.Readiness()); got != http.StatusServiceUnavailable {
		t.Errorf("ready while starting = %d, want 503", got)
	}
	if got := status(p.Startup()); got != http.StatusServiceUnavailable {
		t.Errorf("startup while starting = %d, want 503", got)
	}
	if got := status(p.Liveness()); got != http.StatusOK {
		t.Errorf("live while starting = %d, want 200", got)
	}

	p.MarkStarted()
	if got := status(p.Readiness()); got != http.StatusOK {
		t.Errorf("ready after start = %d, want 200", got)
	}
	if got := status(p.Startup()); got != http.StatusOK {
		t.Errorf("startup after start = %d, want 200", got)
	}

	p.MarkDraining()
	if got := status(p.Readiness()); got != http.StatusServiceUnavailable {
		t.Errorf("ready while draining = %d, want 503", got)
	}
	if got := status(p.Liveness()); got != http.StatusOK {
		t.Errorf("live while draining = %d, want 200", got)
	}
}

func TestReadinessDependencyCached(t *testing.T) {
	p := New(slog.New(slog.DiscardHandler))
	var calls atomic.Int32
	p.AddCheck("redis", func(context.Context) error {
		calls.Add(1)
		return errors.New("connection refused")
	})
	p.MarkStarted()
	for range 5 {
		if got := status(p.Readiness()); got != http.StatusServiceUnavailable {
			t.Errorf("ready with redis down = %d, want 503", got)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("dependency checked %d times within the TTL, want 1", n)
	}
}
