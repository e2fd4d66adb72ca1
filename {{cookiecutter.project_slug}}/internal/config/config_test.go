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
		Port:              8080,
		MetricsPort:       9090,
		LogLevel:          slog.LevelInfo,
		ShutdownTimeout:   25 * time.Second,
		ShutdownDelay:     0,
		MaxBodyBytes:      1 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
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
		{"port", map[string]string{"PORT": "3000"}, func(c Config) bool { return c.Port == 3000 }},
		{"port zero", map[string]string{"PORT": "0"}, func(c Config) bool { return c.Port == 0 }},
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
		{"port not a number", "PORT", "http", "integer from 0 to 65535"},
		{"port too large", "METRICS_PORT", "70000", "integer from 0 to 65535"},
		{"log level", "LOG_LEVEL", "verbose", "debug, info, warn or error"},
		{"timeout without unit", "SHUTDOWN_TIMEOUT", "25", "duration"},
		{"negative delay", "SHUTDOWN_DELAY", "-1s", "duration of at least 0s"},
		{"zero read timeout", "READ_TIMEOUT", "0s", "at least 1ms"},
		{"body limit zero", "MAX_BODY_BYTES", "0", "integer from 1"},
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
	_, err := Load(env(map[string]string{"PORT": "x", "LOG_LEVEL": "y"}))
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, name := range []string{"PORT", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
}

// FuzzLoad checks that no value of a variable makes Load panic, and that a
// value Load accepts is within the documented bounds.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{"", "8080", "-1", "1e3", "25s", "1h30m", "DEBUG", "true", "\x00", "9223372036854775807"} {
		f.Add("PORT", seed)
		f.Add("SHUTDOWN_TIMEOUT", seed)
		f.Add("LOG_LEVEL", seed)
		f.Add("MAX_BODY_BYTES", seed)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		cfg, err := Load(env(map[string]string{name: value}))
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
			return
		}
		if cfg.Port < 0 || cfg.Port > 65535 || cfg.MaxBodyBytes < 1 || cfg.ShutdownTimeout <= 0 || cfg.ShutdownDelay < 0 {
			t.Errorf("Load(%s=%q) accepted out-of-range config %+v", name, value, cfg)
		}
	})
}
