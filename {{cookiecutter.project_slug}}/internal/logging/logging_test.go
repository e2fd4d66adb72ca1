package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
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
