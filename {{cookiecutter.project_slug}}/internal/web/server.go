package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Timeouts bound the phases of an HTTP exchange, so that slow or idle
// clients cannot hold connections and goroutines forever.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// maxHeaderBytes caps request headers at 64 KiB, well above what browsers
// and proxies send, and far below net/http's 1 MiB default.
const maxHeaderBytes = 64 << 10

// NewServer returns an http.Server for h with the timeouts set and the
// server's own error messages (TLS handshake errors, superfluous WriteHeader
// calls) routed to log.
func NewServer(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Listen opens a TCP listener on port on all interfaces, as a container
// needs; port 0 picks a free port.
func Listen(ctx context.Context, port int) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listening on port %d: %w", port, err)
	}
	return ln, nil
}

// Serve runs srv on ln until Shutdown or Close; it reports nil for those
// and the error otherwise.
func Serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
