// Package logging builds the service's structured logger: JSON lines on one
// writer, so that the container runtime collects them from stdout.
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
)

// New returns a JSON logger at level whose every record names the service,
// the component (api or worker) and the build version. Durations are
// logged as seconds, the unit of the service's metrics.
func New(w io.Writer, level slog.Level, service, component string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return slog.New(h).With(
		slog.String("service", service),
		slog.String("component", component),
		slog.String("version", buildinfo.Version),
	)
}

// replaceAttr writes a time.Duration as a float of seconds instead of slog's
// integer of nanoseconds. It also turns the level into a string. Once a
// ReplaceAttr is set, slog passes the level to it as a slog.Level value, and
// the JSON handler would encode that through json.Marshal on every line.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	switch {
	case a.Value.Kind() == slog.KindDuration:
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	case len(groups) == 0 && a.Key == slog.LevelKey:
		if level, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(level.String())
		}
	}
	return a
}

// Exit reports the error that ends the process: as one JSON line at ERROR on
// stdout, like every other line, so that log pipelines keep it, and as a
// plain line on stderr for whoever runs the binary by hand. It builds its
// own logger because the error may come before the configuration that the
// service's logger needs.
func Exit(stdout, stderr io.Writer, service, component string, err error) {
	New(stdout, slog.LevelError, service, component).Error("exit", "error", err)
	fmt.Fprintf(stderr, "%s: %v\n", component, err)
}
