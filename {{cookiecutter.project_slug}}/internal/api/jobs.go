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

// createJob validates and enqueues a job and answers 202 with its id and,
// in Location, the URL to poll its state.
func createJob(q jobs.Queue, handlers *jobs.Registry, maxBody int64, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		log.Info("job queued", "job_id", job.ID, "type", job.Type, "request_id", web.RequestID(r.Context()))
		w.Header().Set("Location", "/v1/jobs/"+job.ID)
		web.WriteJSON(w, http.StatusAccepted, createJobResponse{ID: job.ID})
	})
}

// getJob answers the job's current state, or 404.
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

// decodeJobRequest reads exactly one JSON object with known fields and a
// type. A missing payload is stored as null. Errors are worded for the
// client; a *http.MaxBytesError is returned as is.
func decodeJobRequest(body io.Reader) (createJobRequest, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()

	var req createJobRequest
	if err := dec.Decode(&req); err != nil {
		return req, describeDecodeError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return req, describeDecodeError(err)
		}
		return req, errors.New("invalid JSON: data after the request object")
	}

	if req.Type == "" {
		return req, errors.New(`missing field "type"`)
	}
	if len(req.Payload) == 0 {
		req.Payload = json.RawMessage("null")
	}
	return req, nil
}

func describeDecodeError(err error) error {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return errors.New("empty request body; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return fmt.Errorf("invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typeError):
		if typeError.Field == "" {
			return errors.New("invalid request: want a JSON object")
		}
		return fmt.Errorf("invalid field %q: want a %s", typeError.Field, typeError.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for unknown fields.
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("invalid request body: %w", err)
}
