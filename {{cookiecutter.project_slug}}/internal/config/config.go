// Package config reads the service's settings from environment variables and
// rejects invalid values at start, before anything listens or connects.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Config holds the settings that every component shares. Each command loads
// only the groups it uses (LoadHTTP for the API, LoadQueue for the queue), so
// a variable that a component ignores cannot stop it from starting.
type Config struct {
	MetricsPort int // /metrics listener, and the worker's probes
	LogLevel    slog.Level

	ShutdownTimeout time.Duration // drain budget after the listener closes
	ShutdownDelay   time.Duration // time /ready reports 503 before the listener closes

	// Tracing is true when an OTLP endpoint is configured and the SDK is not
	// disabled. The exporter reads the OTEL_* variables itself.
	Tracing bool
}

// Load reads and validates the shared settings. getenv is os.Getenv in
// production and a map lookup in tests. The error lists every invalid
// variable, not only the first.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	cfg := Config{
		MetricsPort: p.port("METRICS_PORT", 9090),
		LogLevel:    p.level("LOG_LEVEL", slog.LevelInfo),

		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 25*time.Second, time.Millisecond),
		ShutdownDelay:   p.duration("SHUTDOWN_DELAY", 0, 0),
	}
	cfg.Tracing = p.tracingEnabled()
	return cfg, p.err()
}

// HTTP holds the settings of the API's listener. The worker serves only
// probes and metrics and does not read them.
type HTTP struct {
	Port              int // API listener; 0 picks a free port
	MaxBodyBytes      int64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// LoadHTTP reads and validates the API's listener settings.
func LoadHTTP(getenv func(string) string) (HTTP, error) {
	p := parser{getenv: getenv}
	h := HTTP{
		Port:              p.port("PORT", 8080),
		MaxBodyBytes:      int64(p.integer("MAX_BODY_BYTES", 1<<20, 1, 1<<30)),
		ReadHeaderTimeout: p.duration("READ_HEADER_TIMEOUT", 5*time.Second, time.Millisecond),
		ReadTimeout:       p.duration("READ_TIMEOUT", 15*time.Second, time.Millisecond),
		WriteTimeout:      p.duration("WRITE_TIMEOUT", 15*time.Second, time.Millisecond),
		IdleTimeout:       p.duration("IDLE_TIMEOUT", 60*time.Second, time.Millisecond),
	}
	return h, p.err()
}

// parser collects one error per invalid variable so that a single start
// reports all of them.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) err() error {
	return errors.Join(p.errs...)
}

func (p *parser) invalid(name, value, allowed string) {
	p.errs = append(p.errs, fmt.Errorf("invalid %s %q: %s", name, value, allowed))
}

// lookup returns the trimmed value of name, or "" when it is unset or blank.
func (p *parser) lookup(name string) string {
	return strings.TrimSpace(p.getenv(name))
}

func (p *parser) port(name string, def int) int {
	return p.integer(name, def, 0, 65535)
}

func (p *parser) integer(name string, def, lo, hi int) int {
	raw := p.lookup(name)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		p.invalid(name, raw, fmt.Sprintf("want an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// duration parses a Go duration such as 500ms, 25s or 1m30s that is at
// least lo.
func (p *parser) duration(name string, def, lo time.Duration) time.Duration {
	raw := p.lookup(name)
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < lo {
		p.invalid(name, raw, fmt.Sprintf("want a duration of at least %s, such as 25s or 1m30s", lo))
		return def
	}
	return d
}

func (p *parser) level(name string, def slog.Level) slog.Level {
	raw := p.lookup(name)
	switch strings.ToLower(raw) {
	case "":
		return def
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.invalid(name, raw, "want debug, info, warn or error")
	return def
}

func (p *parser) boolean(name string, def bool) bool {
	raw := p.lookup(name)
	if raw == "" {
		return def
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		p.invalid(name, raw, "want true or false")
		return def
	}
	return b
}

// tracingEnabled follows the OpenTelemetry SDK environment specification:
// export only when an endpoint is set, and never when OTEL_SDK_DISABLED is
// true.
func (p *parser) tracingEnabled() bool {
	if p.boolean("OTEL_SDK_DISABLED", false) {
		return false
	}
	return p.lookup("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		p.lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}
