package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

const contentTypeJSON = "application/json"

// Bodies of the router's own responses, built once.
var (
	notFoundBody         = []byte(`{"error":"not found"}` + "\n")
	methodNotAllowedBody = []byte(`{"error":"method not allowed"}` + "\n")
	internalErrorBody    = []byte(`{"error":"internal server error"}` + "\n")
)

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error string `json:"error"`
}

// WriteJSON sends v as JSON with status. A value that cannot be encoded is
// a programming error and gets a 500 response; a failed write means the
// client has gone, which the access log already shows.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode response", "error", err)
		status, body = http.StatusInternalServerError, internalErrorBody
	} else {
		body = append(body, '\n')
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError sends {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorResponse{Error: msg})
}

// JSONErrors serves mux with the router's JSON bodies for unmatched requests
// (404, and 405 with Allow) instead of the mux's plain text. It adds no
// access log, metrics or tracing, for servers whose only clients are the
// kubelet and Prometheus.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec recorder
		rec.reset(w, r)
		mux.ServeHTTP(&rec, r)
	})
}
