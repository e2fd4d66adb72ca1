package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// env returns a getenv func over vars.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		MetricsPort:     9090,
		LogLevel:        slog.LevelInfo,
		ShutdownTimeout: 25 * time.Second,
		ShutdownDelay:   0,
	}
	if cfg != want {
		t.Errorf("Load() = %+v, want %+v", cfg, want)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		check func(Config) bool
	}{
		{"metrics port zero", map[string]string{"METRICS_PORT": "0"}, func(c Config) bool { return c.MetricsPort == 0 }},
		{"log level upper case", map[string]string{"LOG_LEVEL": "DEBUG"}, func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{"log level warning", map[string]string{"LOG_LEVEL": "warning"}, func(c Config) bool { return c.LogLevel == slog.LevelWarn }},
		{"shutdown delay", map[string]string{"SHUTDOWN_DELAY": "5s"}, func(c Config) bool { return c.ShutdownDelay == 5*time.Second }},
		{"surrounding spaces", map[string]string{"METRICS_PORT": " 9100 "}, func(c Config) bool { return c.MetricsPort == 9100 }},
		{"tracing on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, func(c Config) bool { return c.Tracing }},
		{"tracing traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, func(c Config) bool { return c.Tracing }},
		{"tracing disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, func(c Config) bool { return !c.Tracing }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(env(tt.vars))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(cfg) {
				t.Errorf("Load(%v) = %+v", tt.vars, cfg)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name, variable, value, allowed string
	}{
		{"port not a number", "METRICS_PORT", "http", "integer from 0 to 65535"},
		{"port too large", "METRICS_PORT", "70000", "integer from 0 to 65535"},
		{"log level", "LOG_LEVEL", "verbose", "debug, info, warn or error"},
		{"timeout without unit", "SHUTDOWN_TIMEOUT", "25", "duration"},
		{"negative delay", "SHUTDOWN_DELAY", "-1s", "duration of at least 0s"},
		{"sdk disabled", "OTEL_SDK_DISABLED", "maybe", "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatalf("Load(%s=%q) succeeded, want an error", tt.variable, tt.value)
			}
			for _, part := range []string{tt.variable, tt.value, tt.allowed} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestLoadReportsEveryInvalidVariable(t *testing.T) {
	_, err := Load(env(map[string]string{"METRICS_PORT": "x", "LOG_LEVEL": "y"}))
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, name := range []string{"METRICS_PORT", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
}

// Load ignores the API's variables, so that a worker starts whatever they
// hold.
func TestLoadIgnoresHTTPVariables(t *testing.T) {
	vars := map[string]string{"PORT": "abc", "MAX_BODY_BYTES": "0", "READ_TIMEOUT": "soon"}
	if _, err := Load(env(vars)); err != nil {
		t.Errorf("Load(%v): %v", vars, err)
	}
}

// FuzzLoad checks that no value of a variable makes Load panic, and that a
// value Load accepts is within the documented bounds.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{"", "8080", "-1", "1e3", "25s", "1h30m", "DEBUG", "true", "\x00", "9223372036854775807"} {
		f.Add("METRICS_PORT", seed)
		f.Add("SHUTDOWN_TIMEOUT", seed)
		f.Add("LOG_LEVEL", seed)
		f.Add("SHUTDOWN_DELAY", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		cfg, err := Load(env(map[string]string{name: value}))
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
			return
		}
		if cfg.MetricsPort < 0 || cfg.MetricsPort > 65535 || cfg.ShutdownTimeout <= 0 || cfg.ShutdownDelay < 0 {
			t.Errorf("Load(%s=%q) accepted out-of-range config %+v", name, value, cfg)
		}
	})
}

func TestLoadHTTPDefaults(t *testing.T) {
	h, err := LoadHTTP(env(nil))
	if err != nil {
		t.Fatalf("LoadHTTP: %v", err)
	}
	want := HTTP{
		Port:              8080,
		MaxBodyBytes:      1 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	if h != want {
		t.Errorf("LoadHTTP() = %+v, want %+v", h, want)
	}
}

func TestLoadHTTPValid(t *testing.T) {
	h, err := LoadHTTP(env(map[string]string{"PORT": "0", "MAX_BODY_BYTES": "64", "IDLE_TIMEOUT": "2m"}))
	if err != nil {
		t.Fatalf("LoadHTTP: %v", err)
	}
	if h.Port != 0 || h.MaxBodyBytes != 64 || h.IdleTimeout != 2*time.Minute {
		t.Errorf("LoadHTTP() = %+v", h)
	}
}

func TestLoadHTTPInvalid(t *testing.T) {
	tests := []struct {
		name, variable, value, allowed string
	}{
		{"port not a number", "PORT", "eighty", "integer from 0 to 65535"},
		{"zero read timeout", "READ_TIMEOUT", "0s", "at least 1ms"},
		{"body limit zero", "MAX_BODY_BYTES", "0", "integer from 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadHTTP(env(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatalf("LoadHTTP(%s=%q) succeeded, want an error", tt.variable, tt.value)
			}
			for _, part := range []string{tt.variable, tt.value, tt.allowed} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

// FuzzLoadHTTP checks that a value LoadHTTP accepts is within the
// documented bounds.
func FuzzLoadHTTP(f *testing.F) {
	for _, seed := range []string{"", "8080", "-1", "1e3", "25s", "0", "9223372036854775807"} {
		f.Add("PORT", seed)
		f.Add("MAX_BODY_BYTES", seed)
		f.Add("WRITE_TIMEOUT", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		h, err := LoadHTTP(env(map[string]string{name: value}))
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
			return
		}
		if h.Port < 0 || h.Port > 65535 || h.MaxBodyBytes < 1 || h.WriteTimeout <= 0 {
			t.Errorf("LoadHTTP(%s=%q) accepted out-of-range settings %+v", name, value, h)
		}
	})
}
