package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// recoverPanic logs a handler panic with its stack and answers 500 when the
// handler had not started its response. The connection stays usable and the
// process keeps serving.
func (rt *Router) recoverPanic(rec *recorder, r *http.Request, p any) {
	rt.log.LogAttrs(r.Context(), slog.LevelError, "panic",
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(debug.Stack())),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("request_id", RequestID(r.Context())),
	)
	if rec.wroteHeader {
		// Part of the response is already on the wire; the client sees a
		// truncated body, and the access log records the status sent.
		return
	}
	h := rec.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Del("Content-Length")
	rec.WriteHeader(http.StatusInternalServerError)
	_, _ = rec.Write(internalErrorBody)
}
