package jobs

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Handler runs jobs of one type. A returned error makes the worker retry the
// job until its attempts run out; ctx ends when the job times out or the
// worker stops.
type Handler interface {
	Handle(ctx context.Context, job Job) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job Job) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, job Job) error { return f(ctx, job) }

// Registry maps job types to handlers. The API accepts only registered types
// and the worker dead-letters jobs of unregistered ones.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{handlers: make(map[string]Handler)}
}

// Register adds the handler for jobs of type name. Like http.Handle, it
// panics on an empty name, a nil handler or a duplicate, because those are
// programming errors that must stop the service at start.
func (r *Registry) Register(name string, h Handler) {
	if name == "" || h == nil {
		panic("jobs: Register needs a type name and a handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[name]; dup {
		panic(fmt.Sprintf("jobs: handler for type %q registered twice", name))
	}
	r.handlers[name] = h
}

// Lookup returns the handler for jobs of type name.
func (r *Registry) Lookup(name string) (Handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[name]
	return h, ok
}

// Types returns the registered type names in sorted order.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.handlers))
	for name := range r.handlers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
