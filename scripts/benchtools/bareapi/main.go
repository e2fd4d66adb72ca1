// Command bareapi is the baseline of the HTTP benchmark: a plain net/http
// server with no middleware (no logging, metrics, tracing, recovery or
// request ids) and no queue. It serves GET /health and POST /v1/jobs with
// bytes copied from the real service, so that the benchmark's ratio measures
// what the service's stack costs on top of net/http.
//
//	bareapi -addr 127.0.0.1:18610 -health-body '{"status":"ok"}' \
//	    -jobs-status 202 -jobs-body '{"id":"...","status":"queued"}'
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18610", "listen address (loopback only)")
	healthBody := flag.String("health-body", `{"status":"ok"}`, "body of GET /health")
	jobsStatus := flag.Int("jobs-status", http.StatusAccepted, "status of POST /v1/jobs")
	jobsBody := flag.String("jobs-body", `{"status":"queued"}`, "body of POST /v1/jobs")
	maxBody := flag.Int64("max-body-bytes", 1<<20, "largest accepted request body")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "bareapi: invalid -addr %q: want a loopback address\n", *addr)
		os.Exit(2)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, *healthBody)
	})
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		// Decode the body as the service does, so that both sides pay for
		// reading and parsing the same JSON.
		var req struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, *maxBody)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, `{"error":"invalid JSON"}`)
			return
		}
		writeJSON(w, *jobsStatus, *jobsBody)
	})

	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "bareapi:", err)
		os.Exit(1)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
