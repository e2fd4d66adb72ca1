package web

import (
	"log/slog"
	"net/http"
)

// recorder captures the status code a handler writes. For requests that no
// pattern matched it also replaces the mux's plain-text 404 and 405 bodies
// with JSON, keeping the Allow header that the mux sets on 405.
type recorder struct {
	http.ResponseWriter
	req         *http.Request
	code        int
	wroteHeader bool
	discard     bool        // drop the mux's plain-text body after the JSON one
	attrs       []slog.Attr // added to the access log line by the handler
}

// reset readies the recorder for another request. The attrs array is kept,
// so that a pooled recorder does not allocate it again.
func (rec *recorder) reset(w http.ResponseWriter, r *http.Request) {
	clear(rec.attrs)
	*rec = recorder{ResponseWriter: w, req: r, attrs: rec.attrs[:0]}
}

// AddLogAttrs adds attrs to the access log line of the request that w
// answers, so that the one line a request gets also names what the handler
// did, such as the id of the resource it created. It does nothing when w is
// not the writer a Router passed to the handler.
func AddLogAttrs(w http.ResponseWriter, attrs ...slog.Attr) {
	if rec, ok := w.(*recorder); ok {
		rec.attrs = append(rec.attrs, attrs...)
	}
}

func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader {
		rec.ResponseWriter.WriteHeader(code) // let net/http log the superfluous call
		return
	}
	rec.wroteHeader = true
	rec.code = code
	if rec.req.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		rec.writeUnmatched(code)
		return
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) writeUnmatched(code int) {
	body := notFoundBody
	if code == http.StatusMethodNotAllowed {
		body = methodNotAllowedBody
	}
	h := rec.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Del("Content-Length")
	rec.ResponseWriter.WriteHeader(code)
	_, _ = rec.ResponseWriter.Write(body)
	rec.discard = true
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.discard {
		return len(b), nil
	}
	return rec.ResponseWriter.Write(b)
}

// status returns the code sent to the client; a handler that wrote nothing
// sent 200.
func (rec *recorder) status() int {
	if !rec.wroteHeader {
		return http.StatusOK
	}
	return rec.code
}

// Flush lets streaming handlers flush through the recorder.
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController access to the connection's writer.
func (rec *recorder) Unwrap() http.ResponseWriter {
	return rec.ResponseWriter
}
