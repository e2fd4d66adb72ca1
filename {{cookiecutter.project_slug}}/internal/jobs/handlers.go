package jobs

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Handlers returns the registry of every job type the service knows. Add new
// job types here: the API accepts a type only once it is registered, and the
// worker runs it with the registered handler.
//
// Handler metrics are registered with reg; a nil reg leaves them
// unregistered, for processes that only enqueue.
func Handlers(log *slog.Logger, reg prometheus.Registerer) *Registry {
	r := NewRegistry()
	r.Register(EchoType, NewEcho(log, reg))
	return r
}
