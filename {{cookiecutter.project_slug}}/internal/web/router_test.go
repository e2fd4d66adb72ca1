package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log sink that the server's goroutines and the test can
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestRouter(t *testing.T) (*Router, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	rt := NewRouter(log, reg, nil)
	rt.HandleProbe("GET /health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	rt.Handle("GET /id", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(RequestID(r.Context())))
	}))
	rt.Handle("GET /panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	return rt, reg, logs
}

func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRequestIDGenerated(t *testing.T) {
	rt, _, _ := newTestRouter(t)
	w := serve(rt, "GET", "/id", nil)
	id := w.Header().Get("X-Request-ID")
	if len(id) != 16 {
		t.Errorf("generated request id %q, want 16 hex digits", id)
	}
	if w.Body.String() != id {
		t.Errorf("handler saw request id %q, response header has %q", w.Body.String(), id)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	rt, _, _ := newTestRouter(t)
	w := serve(rt, "GET", "/id", http.Header{"X-Request-Id": {"abc-123"}})
	if got := w.Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID = %q, want the client's abc-123", got)
	}
}

func TestRequestIDUnsafeReplaced(t *testing.T) {
	rt, _, _ := newTestRouter(t)
	for _, id := range []string{`a"b`, "a b", strings.Repeat("x", maxRequestIDLen+1)} {
		w := serve(rt, "GET", "/id", http.Header{"X-Request-Id": {id}})
		if got := w.Header().Get("X-Request-ID"); got == id || got == "" {
			t.Errorf("client id %q: response id %q, want a new one", id, got)
		}
	}
}

func TestPanicRecovered(t *testing.T) {
	rt, _, logs := newTestRouter(t)
	w := serve(rt, "GET", "/panic", http.Header{"X-Request-Id": {"req-1"}})
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", w.Code)
	}
	assertJSONError(t, w, "internal server error")
	out := logs.String()
	for _, want := range []string{`"msg":"panic"`, `"panic":"boom"`, `"stack":"goroutine`, `"request_id":"req-1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	// The router keeps serving after a panic.
	if w := serve(rt, "GET", "/health", nil); w.Code != http.StatusOK {
		t.Errorf("status after panic = %d, want 200", w.Code)
	}
}

func TestNotFoundJSON(t *testing.T) {
	rt, _, _ := newTestRouter(t)
	w := serve(rt, "GET", "/missing", nil)
	if w.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", w.Code)
	}
	assertJSONError(t, w, "not found")
}

func TestMethodNotAllowedJSON(t *testing.T) {
	rt, _, _ := newTestRouter(t)
	w := serve(rt, "DELETE", "/health", nil)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("status = %d, want 405", w.Code)
	}
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q, want GET listed", allow)
	}
	assertJSONError(t, w, "method not allowed")
}

func TestMetricsByRoute(t *testing.T) {
	rt, reg, _ := newTestRouter(t)
	serve(rt, "GET", "/health", nil)
	serve(rt, "GET", "/health", nil)
	serve(rt, "GET", "/nope/123", nil)
	serve(rt, "BREW", "/nope", nil)

	counter := rt.metrics.requests
	if got := testutil.ToFloat64(counter.WithLabelValues("GET", "/health", "200")); got != 2 {
		t.Errorf("GET /health 200 count = %v, want 2", got)
	}
	if got := testutil.ToFloat64(counter.WithLabelValues("GET", "unmatched", "404")); got != 1 {
		t.Errorf("unmatched 404 count = %v, want 1", got)
	}
	if got := testutil.ToFloat64(counter.WithLabelValues("OTHER", "unmatched", "404")); got != 1 {
		t.Errorf("unknown method count = %v, want 1 under OTHER", got)
	}
	if n, err := testutil.GatherAndCount(reg, "http_requests_in_flight"); err != nil || n != 1 {
		t.Errorf("http_requests_in_flight series = %d (%v), want 1", n, err)
	}
}

func TestProbeLoggedAtDebug(t *testing.T) {
	rt, _, logs := newTestRouter(t)
	serve(rt, "GET", "/health", http.Header{"X-Request-Id": {"probe-1"}})
	serve(rt, "GET", "/id", http.Header{"X-Request-Id": {"call-1"}})
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		want := map[string]string{"probe-1": "DEBUG", "call-1": "INFO"}[rec["request_id"].(string)]
		if rec["level"] != want {
			t.Errorf("request %v logged at %v, want %s", rec["request_id"], rec["level"], want)
		}
		for _, key := range []string{"method", "route", "status", "duration"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("access log lacks %q: %s", key, line)
			}
		}
	}
}

// Attributes a handler adds land on its request's access line only; the
// pooled recorder must not carry them into the next request.
func TestAddLogAttrs(t *testing.T) {
	rt, _, logs := newTestRouter(t)
	rt.Handle("POST /things", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		AddLogAttrs(w, slog.String("thing_id", "t-1"))
		w.WriteHeader(http.StatusCreated)
	}))
	serve(rt, "POST", "/things", http.Header{"X-Request-Id": {"create-1"}})
	serve(rt, "GET", "/id", http.Header{"X-Request-Id": {"read-1"}})

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), logs.String())
	}
	for i, want := range []any{"t-1", nil} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", lines[i], err)
		}
		if rec["thing_id"] != want {
			t.Errorf("line %d: thing_id = %v, want %v", i+1, rec["thing_id"], want)
		}
	}
}

func assertJSONError(t *testing.T, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body.String(), err)
	}
	if body.Error != want {
		t.Errorf("error = %q, want %q", body.Error, want)
	}
}

// BenchmarkRouter compares the instrumented router with the bare handler
// it wraps, in-process; the gap is the per-request cost of the frame.
func BenchmarkRouter(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	rt := NewRouter(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	rt.HandleProbe("GET /health", bare)
	for name, h := range map[string]http.Handler{"bare": bare, "router": rt} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/health", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
