package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# metrics\n"))
	}))
	h := JSONErrors(mux)

	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/metrics", 200, "# metrics\n"},
		{"HEAD", "/metrics", 200, "# metrics\n"}, // net/http drops the body of a HEAD answer
		{"DELETE", "/metrics", 405, `{"error":"method not allowed"}` + "\n"},
		{"GET", "/health", 404, `{"error":"not found"}` + "\n"},
	}
	for _, tt := range tests {
		w := serve(h, tt.method, tt.path, nil)
		if w.Code != tt.status || w.Body.String() != tt.body {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, w.Code, w.Body.String(), tt.status, tt.body)
		}
		if tt.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
}

// A probe that answers 503 is logged at info, not as a server error.
func TestProbeUnavailableNotLoggedAsError(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := NewRouter(log, prometheus.NewRegistry(), nil)
	rt.HandleProbe("GET /ready", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	if w := serve(rt, "GET", "/ready", nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /ready = %d, want 503", w.Code)
	}
	var line struct{ Level string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line.Level != "INFO" {
		t.Errorf("503 probe logged at %s, want INFO", line.Level)
	}
}
