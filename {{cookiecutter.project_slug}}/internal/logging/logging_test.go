package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestExit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	Exit(&stdout, &stderr, "svc", "api", errors.New(`loading config: invalid PORT "eighty"`))

	var line map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &line); err != nil {
		t.Fatalf("stdout %q is not one JSON line: %v", stdout.String(), err)
	}
	want := map[string]any{"level": "ERROR", "msg": "exit", "service": "svc", "component": "api",
		"error": `loading config: invalid PORT "eighty"`}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if got := stderr.String(); got != "api: loading config: invalid PORT \"eighty\"\n" {
		t.Errorf("stderr = %q", got)
	}
}

func TestNewLineFormat(t *testing.T) {
	var out bytes.Buffer
	log := New(&out, slog.LevelDebug, "svc", "worker")
	log.Warn("job retry", "delay", 1500*time.Millisecond, slog.Group("job", "timeout", 2*time.Second))

	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("output %q is not one JSON line: %v", out.String(), err)
	}
	if line["level"] != "WARN" {
		t.Errorf("level = %v, want WARN", line["level"])
	}
	if line["delay"] != 1.5 {
		t.Errorf("delay = %v, want 1.5 (seconds)", line["delay"])
	}
	if group, _ := line["job"].(map[string]any); group["timeout"] != 2.0 {
		t.Errorf("job.timeout = %v, want 2 (seconds)", line["job"])
	}
	if line["component"] != "worker" {
		t.Errorf("component = %v, want worker", line["component"])
	}
}
