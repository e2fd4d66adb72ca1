package cli

import (
	"bytes"
	"strings"
	"testing"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		exit   bool
		code   int
		stdout string // a part of what is printed there
		stderr string
	}{
		{"no arguments", nil, false, 0, "", ""},
		{"version", []string{"-version"}, true, 0, buildinfo.Version, ""},
		{"double-dash version", []string{"--version"}, true, 0, "commit " + buildinfo.Commit, ""},
		{"short help", []string{"-h"}, true, 0, "environment variables", ""},
		{"long help", []string{"--help"}, true, 0, "usage: prog", ""},
		{"unknown flag", []string{"--port", "80"}, true, 2, "", "usage: prog"},
		{"positional argument", []string{"serve"}, true, 2, "", `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			exit, code := ParseArgs("prog", "Does things.", tt.args, &stdout, &stderr)
			if exit != tt.exit || code != tt.code {
				t.Fatalf("ParseArgs(%q) = %v, %d; want %v, %d", tt.args, exit, code, tt.exit, tt.code)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
			if tt.stdout == "" && stdout.Len() > 0 || tt.stderr == "" && stderr.Len() > 0 {
				t.Errorf("unexpected output: stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}
