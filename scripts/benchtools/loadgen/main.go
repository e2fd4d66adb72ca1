// Command loadgen sends HTTP requests over a fixed number of keep-alive
// connections to a loopback URL and prints one JSON report: request count,
// errors by kind, status codes, throughput and latency percentiles.
//
// It stops at the first of -duration or -requests and refuses targets that
// are not on the loopback interface, so a run is always bounded and local.
//
//	loadgen -url http://127.0.0.1:8080/health -connections 16 -duration 5s
//	loadgen -url http://127.0.0.1:8080/v1/jobs -method POST \
//	    -body '{"type":"echo","payload":{}}' -requests 20000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Upper bounds on any run, whatever the flags ask for.
const (
	maxDuration = 2 * time.Minute
	maxRequests = 5_000_000
)

type options struct {
	url         string
	method      string
	body        []byte
	contentType string
	connections int
	duration    time.Duration
	requests    int64
	timeout     time.Duration
	maxErrors   int64
	expect      map[int]bool
}

// Report is the JSON document printed on stdout.
type Report struct {
	Requests      int64            `json:"requests"`
	OK            int64            `json:"ok"`
	Errors        map[string]int64 `json:"errors"`
	Status        map[string]int64 `json:"status"`
	ElapsedSec    float64          `json:"elapsed_s"`
	ThroughputRPS float64          `json:"throughput_rps"`
	LatencyMS     Percentiles      `json:"latency_ms"`
	Connections   int              `json:"connections"`
	NewConns      int64            `json:"new_connections"`
	// ErrorSamples holds the first message seen of each error kind.
	ErrorSamples map[string]string `json:"error_samples"`
}

// Percentiles of the latency of requests that got a response, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	report := run(opts)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: writing report:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "target URL; its host must be a loopback address")
	method := fs.String("method", http.MethodGet, "HTTP method")
	body := fs.String("body", "", "request body (sent with every request)")
	contentType := fs.String("content-type", "application/json", "Content-Type of the body")
	connections := fs.Int("connections", 16, "number of concurrent keep-alive connections")
	duration := fs.Duration("duration", 5*time.Second, "run time, at most 2m")
	requests := fs.Int64("requests", 0, "stop after this many requests (0: run for -duration)")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of one request")
	expect := fs.String("expect", "2xx", "comma-separated status codes that count as OK, or 2xx")
	maxErrors := fs.Int64("max-errors", 0, "stop after this many errors (0: never)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}

	opts := options{
		url:         *target,
		method:      strings.ToUpper(*method),
		body:        []byte(*body),
		contentType: *contentType,
		connections: *connections,
		duration:    min(*duration, maxDuration),
		requests:    *requests,
		timeout:     *timeout,
		maxErrors:   *maxErrors,
	}
	if opts.requests <= 0 || opts.requests > maxRequests {
		opts.requests = maxRequests
	}
	if opts.connections < 1 || opts.connections > 1024 {
		return opts, fmt.Errorf("invalid -connections %d: want 1 to 1024", opts.connections)
	}
	if err := checkLoopback(opts.url); err != nil {
		return opts, err
	}
	codes, err := parseExpect(*expect)
	opts.expect = codes
	return opts, err
}

// checkLoopback rejects any URL whose host is not a loopback IP or localhost.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("invalid -url %q: want http://127.0.0.1:PORT/path", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid -url %q: the host must be a loopback address", raw)
	}
	return nil
}

func parseExpect(raw string) (map[int]bool, error) {
	codes := map[int]bool{}
	if raw == "2xx" {
		for code := 200; code < 300; code++ {
			codes[code] = true
		}
		return codes, nil
	}
	for field := range strings.SplitSeq(raw, ",") {
		code, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || code < 100 || code > 599 {
			return nil, fmt.Errorf("invalid -expect %q: want status codes such as 200,202", raw)
		}
		codes[code] = true
	}
	return codes, nil
}

// counters is shared by all connection loops.
type counters struct {
	mu       sync.Mutex
	errors   map[string]int64
	samples  map[string]string
	status   map[string]int64
	started  atomic.Int64
	ok       atomic.Int64
	failed   atomic.Int64
	newConns atomic.Int64
}

func (c *counters) add(table map[string]int64, key string) {
	c.mu.Lock()
	table[key]++
	c.mu.Unlock()
}

func (c *counters) addError(kind, message string) {
	c.failed.Add(1)
	c.mu.Lock()
	c.errors[kind]++
	if _, seen := c.samples[kind]; !seen {
		c.samples[kind] = message
	}
	c.mu.Unlock()
}

func run(opts options) Report {
	transport := &http.Transport{
		MaxIdleConns:        opts.connections,
		MaxIdleConnsPerHost: opts.connections,
		MaxConnsPerHost:     opts.connections,
		DisableCompression:  true,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: opts.timeout}
	defer transport.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), opts.duration)
	defer cancel()

	stats := &counters{
		errors:  map[string]int64{},
		samples: map[string]string{},
		status:  map[string]int64{},
	}
	latencies := make([][]time.Duration, opts.connections)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range opts.connections {
		wg.Go(func() {
			latencies[i] = loop(ctx, client, opts, stats)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(latencies...)
	slices.Sort(all)
	requests := stats.started.Load()
	return Report{
		Requests:      requests,
		OK:            stats.ok.Load(),
		Errors:        stats.errors,
		Status:        stats.status,
		ElapsedSec:    elapsed.Seconds(),
		ThroughputRPS: float64(requests) / elapsed.Seconds(),
		LatencyMS:     percentiles(all),
		Connections:   opts.connections,
		NewConns:      stats.newConns.Load(),
		ErrorSamples:  stats.samples,
	}
}

// loop sends requests one after another until the context ends or the shared
// request budget is spent, and returns the latency of each response.
func loop(ctx context.Context, client *http.Client, opts options, stats *counters) []time.Duration {
	var latencies []time.Duration
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				stats.newConns.Add(1)
			}
		},
	}
	for ctx.Err() == nil {
		if opts.maxErrors > 0 && stats.failed.Load() >= opts.maxErrors {
			break
		}
		if stats.started.Add(1) > opts.requests {
			stats.started.Add(-1)
			break
		}
		begin := time.Now()
		code, err := send(ctx, client, opts, trace)
		if err != nil {
			if ctx.Err() != nil {
				// The run ended while this request was in flight: it is
				// neither a success nor an error of the server.
				stats.started.Add(-1)
				break
			}
			stats.addError(classify(err), err.Error())
			continue
		}
		latencies = append(latencies, time.Since(begin))
		stats.add(stats.status, strconv.Itoa(code))
		switch {
		case opts.expect[code]:
			stats.ok.Add(1)
		case code >= 500:
			stats.addError("status_5xx", "status "+strconv.Itoa(code))
		default:
			stats.addError("status_unexpected", "status "+strconv.Itoa(code))
		}
	}
	return latencies
}

// send sends one request, reads its whole response and returns the status.
func send(ctx context.Context, client *http.Client, opts options,
	trace *httptrace.ClientTrace) (int, error) {
	var body io.Reader
	if len(opts.body) > 0 {
		body = strings.NewReader(string(opts.body))
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	req, err := http.NewRequestWithContext(ctx, opts.method, opts.url, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", opts.contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// classify names the kind of a transport error. "refused" means no listener
// accepted the connection, so the server never saw the request; every other
// kind means a request was sent and its response was lost or never came.
func classify(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken_pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "other"
}

func percentiles(sorted []time.Duration) Percentiles {
	if len(sorted) == 0 {
		return Percentiles{}
	}
	at := func(q float64) float64 {
		i := int(q * float64(len(sorted)-1))
		return float64(sorted[i].Microseconds()) / 1000
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}
