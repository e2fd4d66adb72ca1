// Package health tracks the process's lifecycle and serves the Kubernetes
// liveness, readiness and startup probes.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Check reports whether a dependency that the service needs is usable.
type Check func(ctx context.Context) error

const (
	// checkTTL is how long a dependency result is reused, so that frequent
	// probes and many replicas do not turn into a load on the dependency.
	checkTTL = time.Second
	// checkTimeout stays under the one-second default timeoutSeconds of a
	// Kubernetes probe, so /ready answers before the kubelet gives up.
	checkTimeout = 800 * time.Millisecond
)

var (
	errStarting = errors.New("starting")
	errDraining = errors.New("shutting down")
)

// Probe is the lifecycle state behind the probe endpoints. It starts in the
// starting state; MarkStarted and MarkDraining move it forward.
type Probe struct {
	log      *slog.Logger
	started  atomic.Bool
	draining atomic.Bool

	checks []namedCheck

	mu      sync.Mutex // serializes dependency checks
	last    atomic.Pointer[checkResult]
	failing atomic.Bool // the last check failed; logged on each change
}

type namedCheck struct {
	name  string
	check Check
}

type checkResult struct {
	at  time.Time
	err error
}

// New returns a probe in the starting state.
func New(log *slog.Logger) *Probe {
	return &Probe{log: log}
}

// AddCheck adds a dependency that must be usable for the service to be
// ready. Add checks before the probe handlers serve.
func (p *Probe) AddCheck(name string, c Check) {
	p.checks = append(p.checks, namedCheck{name: name, check: c})
}

// MarkStarted ends the starting state.
func (p *Probe) MarkStarted() { p.started.Store(true) }

// MarkDraining makes readiness fail from now on, so that load balancers
// stop sending new requests while in-flight ones finish.
func (p *Probe) MarkDraining() { p.draining.Store(true) }

// Ready returns nil when the service should receive traffic, and the reason
// otherwise.
func (p *Probe) Ready(ctx context.Context) error {
	switch {
	case p.draining.Load():
		return errDraining
	case !p.started.Load():
		return errStarting
	}
	return p.checkDependencies(ctx)
}

// checkDependencies runs the checks at most once per checkTTL. Callers that
// arrive while a check runs wait for its result instead of starting another.
func (p *Probe) checkDependencies(ctx context.Context) error {
	if len(p.checks) == 0 {
		return nil
	}
	if r := p.last.Load(); r != nil && time.Since(r.at) < checkTTL {
		return r.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.last.Load(); r != nil && time.Since(r.at) < checkTTL {
		return r.err
	}

	// A client that hangs up must not cut the check short and cache that.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	err := p.runChecks(ctx)
	p.last.Store(&checkResult{at: time.Now(), err: err})
	p.logChange(err)
	return err
}

func (p *Probe) runChecks(ctx context.Context) error {
	for _, c := range p.checks {
		if err := c.check(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// logChange logs when dependencies fail and when they recover, not on every
// probe.
func (p *Probe) logChange(err error) {
	if err != nil && !p.failing.Swap(true) {
		p.log.Warn("dependency unavailable", "error", err)
	}
	if err == nil && p.failing.Swap(false) {
		p.log.Info("dependency recovered")
	}
}

// Probe bodies that never change, encoded once.
var (
	aliveBody   = []byte(`{"status":"ok"}` + "\n")
	readyBody   = []byte(`{"status":"ready"}` + "\n")
	startedBody = []byte(`{"status":"started"}` + "\n")
)

// Liveness answers 200 for as long as the process serves HTTP. It checks no
// dependency: a restart would not repair one.
func (p *Probe) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		write(w, http.StatusOK, aliveBody)
	})
}

// Readiness answers 200 when Ready returns nil and 503 with the reason
// otherwise.
func (p *Probe) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Ready(r.Context()); err != nil {
			writeUnavailable(w, err)
			return
		}
		write(w, http.StatusOK, readyBody)
	})
}

// Startup answers 503 until MarkStarted and 200 after, so that Kubernetes
// holds off the other probes during a slow start.
func (p *Probe) Startup() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !p.started.Load() {
			writeUnavailable(w, errStarting)
			return
		}
		write(w, http.StatusOK, startedBody)
	})
}

func writeUnavailable(w http.ResponseWriter, reason error) {
	body, _ := json.Marshal(struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}{"unavailable", reason.Error()})
	write(w, http.StatusServiceUnavailable, append(body, '\n'))
}

// Header values shared by all probe answers, to spare an allocation per
// probe; net/http only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
)

func write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
