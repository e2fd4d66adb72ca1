package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"{{ cookiecutter.module_path }}/internal/jobs"
	"{{ cookiecutter.module_path }}/internal/web"
)

// createJobRequest is the body of POST /v1/jobs.
type createJobRequest struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type createJobResponse struct {
	ID string `json:"id"`
}

// createJob validates and enqueues a job and responds 202 with its id and,
// in Location, the URL to poll its state. The body must be sent as
// application/json (415 otherwise).
func createJob(q jobs.Queue, handlers *jobs.Registry, maxBody int64, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isJSON(r.Header.Get("Content-Type")) {
			web.WriteError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		req, err := decodeJobRequest(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			web.WriteError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit))
			return
		case err != nil:
			web.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if _, ok := handlers.Lookup(req.Type); !ok {
			web.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown job type %q; known types: %s",
				req.Type, strings.Join(handlers.Types(), ", ")))
			return
		}

		job, err := q.Enqueue(r.Context(), req.Type, req.Payload)
		if err != nil {
			log.Error("enqueue failed", "error", err, "type", req.Type, "request_id", web.RequestID(r.Context()))
			web.WriteError(w, http.StatusServiceUnavailable, "job queue unavailable, try again later")
			return
		}
		// The access log line of the request carries the job id, which ties
		// it to the worker's lines about the job.
		web.AddLogAttrs(w, slog.String("job_id", job.ID))
		w.Header().Set("Location", "/v1/jobs/"+job.ID)
		web.WriteJSON(w, http.StatusAccepted, createJobResponse{ID: job.ID})
	})
}

// isJSON reports whether a Content-Type header names application/json,
// with or without parameters such as charset. It compares by hand rather
// than with mime.ParseMediaType, which allocates a map per request.
func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json")
}

// getJob responds with the job's current state, or 404.
func getJob(q jobs.Queue, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		job, err := q.Get(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, jobs.ErrNotFound):
			web.WriteError(w, http.StatusNotFound, "job not found")
		case err != nil:
			log.Error("job lookup failed", "error", err, "request_id", web.RequestID(r.Context()))
			web.WriteError(w, http.StatusServiceUnavailable, "job queue unavailable, try again later")
		default:
			web.WriteJSON(w, http.StatusOK, job)
		}
	})
}

// decodeJobRequest reads exactly one JSON object whose keys are "type", a
// non-empty string, and optionally "payload", any JSON value; a missing
// payload is stored as null. Keys match exactly (encoding/json alone would
// also take "TYPE"), each at most once, and nothing may follow the object.
// Errors are worded for the client; a *http.MaxBytesError is returned as is.
func decodeJobRequest(body io.Reader) (createJobRequest, error) {
	var req createJobRequest
	dec := json.NewDecoder(body)
	err := expectDelim(dec, '{')
	if errors.Is(err, io.EOF) {
		return req, errors.New("empty request body; want a JSON object")
	}
	if err != nil {
		return req, err
	}
	var seenType, seenPayload bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, describeDecodeError(err)
		}
		switch key, _ := tok.(string); key {
		case "type":
			if seenType {
				return req, errors.New(`duplicate field "type"`)
			}
			seenType = true
			if req.Type, err = decodeType(dec); err != nil {
				return req, err
			}
		case "payload":
			if seenPayload {
				return req, errors.New(`duplicate field "payload"`)
			}
			seenPayload = true
			if err := dec.Decode(&req.Payload); err != nil {
				return req, describeDecodeError(err)
			}
		default:
			return req, fmt.Errorf("unknown field %q; want \"type\" and \"payload\"", key)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return req, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return req, describeDecodeError(err)
		}
		return req, errors.New("invalid JSON: data after the request object")
	}

	if !seenType {
		return req, errors.New(`missing field "type"`)
	}
	if req.Payload == nil {
		req.Payload = json.RawMessage("null")
	}
	return req, nil
}

// expectDelim reads the next token and fails unless it is delim.
func expectDelim(dec *json.Decoder, delim json.Delim) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) && delim == '{' {
		return err
	}
	if err != nil {
		return describeDecodeError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != delim {
		return errors.New("invalid request: want a JSON object")
	}
	return nil
}

// decodeType reads the value of "type": a non-empty string.
func decodeType(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", describeDecodeError(err)
	}
	t, ok := tok.(string)
	switch {
	case !ok:
		return "", errors.New(`invalid field "type": want a string`)
	case t == "":
		return "", errors.New(`empty field "type": want a job type`)
	}
	return t, nil
}

func describeDecodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return fmt.Errorf("invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	}
	return fmt.Errorf("invalid request body: %w", err)
}
