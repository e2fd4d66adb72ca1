// Package web is the HTTP layer that the API and the worker's probe server
// share: a router over http.ServeMux with request ids, panic recovery,
// access logs, Prometheus metrics and tracing built in, plus JSON helpers.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Router routes with http.ServeMux patterns ("GET /v1/jobs/{id}") and wraps
// every request, matched or not, in one instrumentation frame. Register all
// routes before the first request: the route table is read without a lock.
type Router struct {
	mux        *http.ServeMux
	routes     map[string]*route // by mux pattern
	log        *slog.Logger
	metrics    *httpMetrics
	tracer     trace.Tracer // nil when tracing is off
	propagator propagation.TextMapPropagator
	recorders  sync.Pool
}

// route is the router's record of one registered pattern.
type route struct {
	method string // "" when the pattern matches any method
	path   string // the route label, such as /v1/jobs/{id}
	probe  bool   // successful requests are logged at debug level
	codes  codeCache
}

// NewRouter returns an empty router. Its HTTP metrics are registered with
// reg. tracer may be nil, which skips span handling altogether.
func NewRouter(log *slog.Logger, reg prometheus.Registerer, tracer trace.Tracer) *Router {
	rt := &Router{
		mux:        http.NewServeMux(),
		routes:     make(map[string]*route),
		log:        log,
		metrics:    newHTTPMetrics(reg),
		tracer:     tracer,
		propagator: otel.GetTextMapPropagator(),
	}
	rt.recorders.New = func() any { return new(recorder) }
	return rt
}

// Handle registers h for pattern. Its requests are logged at info level.
func (rt *Router) Handle(pattern string, h http.Handler) {
	rt.register(pattern, h, false)
}

// HandleProbe registers a health probe. Kubelets call probes every few
// seconds, so successful probe requests are logged at debug level only, and
// a 503 (starting, draining or a dependency down) at info level rather than
// as a server error; other failures are logged like any other request.
func (rt *Router) HandleProbe(pattern string, h http.Handler) {
	rt.register(pattern, h, true)
}

func (rt *Router) register(pattern string, h http.Handler, probe bool) {
	rt.mux.Handle(pattern, h)
	method, path, found := strings.Cut(pattern, " ")
	if !found {
		method, path = "", pattern
	}
	rt.routes[pattern] = &route{method: method, path: strings.TrimSpace(path), probe: probe}
}

// unmatched labels requests that no pattern matched (404 and 405 from the
// mux), so that arbitrary paths cannot inflate metric cardinality.
var unmatched = &route{path: "unmatched"}

// ServeHTTP runs the request through the mux inside the instrumentation
// frame. Everything the frame needs is done here, in one function, so that
// a request costs one stack frame and a handful of allocations.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt.metrics.inFlight.Inc()

	id := requestID(r.Header)
	w.Header()[requestIDHeader] = []string{id}
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)

	var span trace.Span
	if rt.tracer != nil {
		ctx = rt.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = rt.tracer.Start(ctx, r.Method,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(r.Method),
				semconv.URLPath(r.URL.Path),
			),
		)
	}

	r = r.WithContext(ctx)
	rec := rt.recorders.Get().(*recorder)
	rec.reset(w, r)
	defer rt.finish(rec, r, span, start)

	rt.mux.ServeHTTP(rec, r)
}

// finish recovers a handler panic, then records metrics, the span and the
// access log line. It runs deferred, so it sees the pattern that the mux
// stored in r.Pattern.
func (rt *Router) finish(rec *recorder, r *http.Request, span trace.Span, start time.Time) {
	if p := recover(); p != nil {
		if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			rt.metrics.inFlight.Dec()
			panic(p)
		}
		rt.recoverPanic(rec, r, p)
	}
	elapsed := time.Since(start)
	status := rec.status()

	matched := rt.routes[r.Pattern]
	if matched == nil {
		matched = unmatched
	}
	rt.metrics.observe(matched, r.Method, status, elapsed)
	rt.metrics.inFlight.Dec()
	if span != nil {
		endSpan(span, r.Pattern, matched.path, status)
	}
	rt.logRequest(r, matched, status, elapsed, span, rec.attrs)

	rec.reset(nil, nil)
	rt.recorders.Put(rec)
}

func (rt *Router) logRequest(r *http.Request, matched *route, status int, elapsed time.Duration,
	span trace.Span, extra []slog.Attr) {
	level := slog.LevelInfo
	switch {
	case matched.probe && status < 400:
		level = slog.LevelDebug
	case matched.probe && status == http.StatusServiceUnavailable:
		// A probe's 503 is a response, not a failure of the server: the
		// process is starting, draining or waiting for a dependency, and
		// the probe logs the dependency's error itself.
	case status >= 500:
		level = slog.LevelError
	}
	ctx := r.Context()
	if !rt.log.Enabled(ctx, level) {
		return
	}
	// The record is built by hand because Logger.LogAttrs would also look up
	// the caller's program counter, which these lines never show, and this
	// is the one line that every request writes.
	record := slog.NewRecord(time.Now(), level, "request", 0)
	record.AddAttrs(
		slog.String("method", r.Method),
		slog.String("route", matched.path),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("request_id", RequestID(ctx)),
	)
	if span != nil {
		if sc := span.SpanContext(); sc.IsValid() {
			record.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
		}
	}
	record.AddAttrs(extra...)
	_ = rt.log.Handler().Handle(ctx, record)
}
