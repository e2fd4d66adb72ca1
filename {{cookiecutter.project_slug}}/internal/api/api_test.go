package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
	"{{ cookiecutter.module_path }}/internal/health"
)

// newTestServer starts the real API handler with the given config, filling
// in what the test leaves out.
func newTestServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Probe == nil {
		cfg.Probe = health.New(cfg.Log)
		cfg.Probe.MarkStarted()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	srv := httptest.NewServer(NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", req.Method, req.URL, err)
	}
	return resp, body
}

func TestProbes(t *testing.T) {
	probe := health.New(slog.New(slog.DiscardHandler))
	srv := newTestServer(t, Config{Probe: probe})

	for path, want := range map[string]int{"/health": 200, "/ready": 503, "/startup": 503} {
		if resp, _ := get(t, srv.URL+path); resp.StatusCode != want {
			t.Errorf("GET %s while starting = %d, want %d", path, resp.StatusCode, want)
		}
	}
	probe.MarkStarted()
	for _, path := range []string{"/health", "/ready", "/startup"} {
		if resp, _ := get(t, srv.URL+path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s after start = %d, want 200", path, resp.StatusCode)
		}
	}
	probe.MarkDraining()
	if resp, _ := get(t, srv.URL+"/ready"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /ready while draining = %d, want 503", resp.StatusCode)
	}
}

func TestVersion(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, body := get(t, srv.URL+"/version")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /version = %d, want 200", resp.StatusCode)
	}
	var got buildinfo.Info
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got != buildinfo.Get() {
		t.Errorf("GET /version = %+v, want %+v", got, buildinfo.Get())
	}
}

func TestUnknownPathJSON(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, body := get(t, srv.URL+"/does-not-exist")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
	if !json.Valid(body) || !strings.Contains(string(body), `"error"`) {
		t.Errorf("body = %q, want a JSON error", body)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("404 response lacks X-Request-ID")
	}
}
