package health

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func status(h http.Handler) int {
	code, _ := serve(h)
	return code
}

func serve(h http.Handler) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	return w.Code, w.Body.String()
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

// A failed check is reported by name only: its error, which can hold
// addresses and internals, goes to the log.
func TestReadinessHidesCheckErrors(t *testing.T) {
	var logs strings.Builder
	p := New(slog.New(slog.NewJSONHandler(&logs, nil)))
	p.AddCheck("queue", func(context.Context) error {
		return errors.New("dial tcp 10.0.0.7:6379: connect: connection refused")
	})
	p.AddCheck("other", func(context.Context) error { return nil })
	p.MarkStarted()

	code, body := serve(p.Readiness())
	want := `{"status":"unavailable","checks":{"other":"ok","queue":"unavailable"}}` + "\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("ready = %d %q, want 503 %q", code, body, want)
	}
	if !strings.Contains(logs.String(), "10.0.0.7:6379") {
		t.Errorf("log %q lacks the check's error", logs.String())
	}

	p.MarkDraining()
	if _, body := serve(p.Readiness()); body != `{"status":"unavailable","reason":"draining"}`+"\n" {
		t.Errorf("ready while draining = %q", body)
	}
}
