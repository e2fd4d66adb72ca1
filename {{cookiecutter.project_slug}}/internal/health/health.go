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
	// Kubernetes probe, so /ready responds before the kubelet gives up.
	checkTimeout = 800 * time.Millisecond
	// failLogInterval is how often a dependency that stays unavailable is
	// logged again, after the first failure.
	failLogInterval = 30 * time.Second
)

var (
	errStarting = errors.New("starting")
	errDraining = errors.New("draining")
)

// Probe is the lifecycle state behind the probe endpoints. It starts in the
// starting state; MarkStarted and MarkDraining move it forward.
type Probe struct {
	log      *slog.Logger
	started  atomic.Bool
	draining atomic.Bool

	checks []namedCheck

	mu         sync.Mutex // serializes dependency checks and guards failLogged
	last       atomic.Pointer[checkResult]
	failLogged time.Time // when a failure was last logged; zero while healthy
}

type namedCheck struct {
	name  string
	check Check
}

// checkResult is one run of every check. body is the 503 response when a
// check failed: it names each check and its state but never the error, which
// could reveal addresses or internals to anyone who reaches the public port.
type checkResult struct {
	at   time.Time
	err  error // every failure, joined; logged, not served
	body []byte
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
	_, err := p.ready(ctx)
	return err
}

// ready also returns the 503 body that goes with a failure.
func (p *Probe) ready(ctx context.Context) ([]byte, error) {
	switch {
	case p.draining.Load():
		return drainingBody, errDraining
	case !p.started.Load():
		return startingBody, errStarting
	}
	r := p.checkDependencies(ctx)
	return r.body, r.err
}

// noChecks is the result of a probe without dependencies.
var noChecks checkResult

// checkDependencies runs the checks at most once per checkTTL. Callers that
// arrive while a check runs wait for its result instead of starting another.
func (p *Probe) checkDependencies(ctx context.Context) *checkResult {
	if len(p.checks) == 0 {
		return &noChecks
	}
	if r := p.last.Load(); r != nil && time.Since(r.at) < checkTTL {
		return r
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.last.Load(); r != nil && time.Since(r.at) < checkTTL {
		return r
	}

	// A client that hangs up must not cut the check short and cache that.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	r := p.runChecks(ctx)
	p.last.Store(r)
	p.logResult(r.err)
	return r
}

// runChecks runs every check, so that the response shows the state of each.
func (p *Probe) runChecks(ctx context.Context) *checkResult {
	r := &checkResult{at: time.Now()}
	states := make(map[string]string, len(p.checks))
	var errs []error
	for _, c := range p.checks {
		states[c.name] = "ok"
		if err := c.check(ctx); err != nil {
			states[c.name] = "unavailable"
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	if r.err = errors.Join(errs...); r.err != nil {
		r.body = encode(unavailable{Status: "unavailable", Checks: states})
	}
	return r
}

// logResult logs a failure when it starts and again every failLogInterval
// while it lasts, and the recovery once. The caller holds p.mu.
func (p *Probe) logResult(err error) {
	switch {
	case err == nil && !p.failLogged.IsZero():
		p.failLogged = time.Time{}
		p.log.Info("dependency recovered")
	case err != nil && time.Since(p.failLogged) >= failLogInterval:
		p.failLogged = time.Now()
		p.log.Warn("dependency unavailable", "error", err)
	}
}

// unavailable is the body of a 503 answer.
type unavailable struct {
	Status string            `json:"status"`
	Reason string            `json:"reason,omitempty"` // starting or draining
	Checks map[string]string `json:"checks,omitempty"` // check name to "ok" or "unavailable"
}

func encode(v unavailable) []byte {
	body, _ := json.Marshal(v) // a struct of strings always encodes
	return append(body, '\n')
}

// Probe bodies that never change, encoded once.
var (
	aliveBody    = []byte(`{"status":"ok"}` + "\n")
	readyBody    = []byte(`{"status":"ready"}` + "\n")
	startedBody  = []byte(`{"status":"started"}` + "\n")
	startingBody = encode(unavailable{Status: "unavailable", Reason: errStarting.Error()})
	drainingBody = encode(unavailable{Status: "unavailable", Reason: errDraining.Error()})
)

// Liveness answers 200 for as long as the process serves HTTP. It checks no
// dependency: a restart would not repair one.
func (p *Probe) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		write(w, http.StatusOK, aliveBody)
	})
}

// Readiness answers 200 when Ready returns nil. Otherwise it answers 503
// with the reason (starting or draining) or the state of each dependency
// check, such as {"status":"unavailable","checks":{"queue":"unavailable"}};
// the error behind a failed check goes to the log only.
func (p *Probe) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, err := p.ready(r.Context()); err != nil {
			write(w, http.StatusServiceUnavailable, body)
			return
		}
		write(w, http.StatusOK, readyBody)
	})
}

// Startup answers 503 until MarkStarted and 200 after, so that Kubernetes
// holds off the other probes during a slow start. Start-up ends once the
// listeners are up; it does not wait for dependencies, because a dependency
// outage at start is what readiness is for, and a failing startup probe
// would have the kubelet restart a process that a restart cannot repair.
func (p *Probe) Startup() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !p.started.Load() {
			write(w, http.StatusServiceUnavailable, startingBody)
			return
		}
		write(w, http.StatusOK, startedBody)
	})
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
