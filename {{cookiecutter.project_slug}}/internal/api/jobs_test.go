package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"{{ cookiecutter.module_path }}/internal/jobs"
	"{{ cookiecutter.module_path }}/internal/queue/memory"
	"{{ cookiecutter.module_path }}/internal/web"
)

func newJobsServer(t *testing.T, maxBody int64) (string, *memory.Queue) {
	t.Helper()
	q := memory.New()
	srv := newTestServer(t, Config{
		Queue:        q,
		Jobs:         jobs.Handlers(slog.New(slog.DiscardHandler), nil),
		MaxBodyBytes: maxBody,
	})
	return srv.URL, q
}

func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	return postAs(t, url, "application/json", body)
}

func postAs(t *testing.T, url, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func TestCreateJob(t *testing.T) {
	url, q := newJobsServer(t, 1<<20)
	resp, body := post(t, url+"/v1/jobs", `{"type":"echo","payload":{"n":1}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d (%s), want 202", resp.StatusCode, body)
	}
	var created createJobResponse
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("body %q: want {\"id\": ...} (%v)", body, err)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/jobs/"+created.ID {
		t.Errorf("Location = %q, want /v1/jobs/%s", loc, created.ID)
	}
	job, err := q.Get(t.Context(), created.ID)
	if err != nil {
		t.Fatalf("queue has no job %s: %v", created.ID, err)
	}
	if job.Type != "echo" || string(job.Payload) != `{"n":1}` {
		t.Errorf("queued job = %+v", job)
	}
}

func TestCreateJobRejects(t *testing.T) {
	url, _ := newJobsServer(t, 64)
	tests := []struct {
		name, body string
		status     int
		message    string
	}{
		{"invalid JSON", `{"type":`, 400, "invalid JSON"},
		{"not an object", `[1,2]`, 400, "want a JSON object"},
		{"unknown field", `{"type":"echo","extra":1}`, 400, `unknown field "extra"`},
		{"missing type", `{"payload":{}}`, 400, `missing field "type"`},
		{"unknown type", `{"type":"nope"}`, 400, `unknown job type "nope"`},
		{"trailing data", `{"type":"echo"} {}`, 400, "data after the request object"},
		{"empty body", ``, 400, "empty request body"},
		{"upper-case keys", `{"TYPE":"echo","Payload":1}`, 400, `unknown field "TYPE"`},
		{"mixed-case payload", `{"type":"echo","Payload":1}`, 400, `unknown field "Payload"`},
		{"duplicate type", `{"type":"nope","type":"echo"}`, 400, `duplicate field "type"`},
		{"duplicate payload", `{"type":"echo","payload":1,"payload":2}`, 400, `duplicate field "payload"`},
		{"empty type", `{"type":""}`, 400, `empty field "type"`},
		{"type not a string", `{"type":["echo"]}`, 400, `invalid field "type": want a string`},
		{"type null", `{"type":null}`, 400, `invalid field "type": want a string`},
		{"unclosed object", `{"type":"echo"`, 400, "unexpected end of input"},
		{"trailing comma", `{"type":"echo",}`, 400, "invalid JSON"},
		{"invalid UTF-8", "{\"type\":\"echo\",\"payload\":\"\xff\"}", 400, "not valid UTF-8"},
		{"too large", `{"type":"echo","payload":"` + strings.Repeat("x", 100) + `"}`, 413, "exceeds 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, url+"/v1/jobs", tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			var e web.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if !strings.Contains(e.Error, tt.message) {
				t.Errorf("error = %q, want it to contain %q", e.Error, tt.message)
			}
		})
	}
}

func TestCreateJobPayloadOptional(t *testing.T) {
	url, q := newJobsServer(t, 1<<20)
	for _, body := range []string{`{"type":"echo"}`, `{"payload":null,"type":"echo"}`} {
		resp, raw := post(t, url+"/v1/jobs", body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s = %d (%s), want 202", body, resp.StatusCode, raw)
		}
		var created createJobResponse
		if err := json.Unmarshal(raw, &created); err != nil {
			t.Fatal(err)
		}
		if job, err := q.Get(t.Context(), created.ID); err != nil || string(job.Payload) != "null" {
			t.Errorf("POST %s queued payload %q (%v), want null", body, job.Payload, err)
		}
	}
}

func TestCreateJobContentType(t *testing.T) {
	url, _ := newJobsServer(t, 1<<20)
	tests := []struct {
		contentType string
		status      int
	}{
		{"application/json", 202},
		{"application/json; charset=utf-8", 202},
		{"Application/JSON ;charset=UTF-8", 202},
		{"", 415},
		{"text/plain", 415},
		{"application/x-www-form-urlencoded", 415},
		{"application/jsonx", 415},
	}
	for _, tt := range tests {
		resp, body := postAs(t, url+"/v1/jobs", tt.contentType, `{"type":"echo"}`)
		if resp.StatusCode != tt.status {
			t.Errorf("Content-Type %q: status %d, want %d", tt.contentType, resp.StatusCode, tt.status)
		}
		if tt.status == 415 && !bytes.Contains(body, []byte(`"error":"Content-Type must be application/json"`)) {
			t.Errorf("Content-Type %q: body %q, want a JSON error", tt.contentType, body)
		}
	}
}

func TestGetJob(t *testing.T) {
	url, q := newJobsServer(t, 1<<20)
	job, err := q.Enqueue(t.Context(), "echo", json.RawMessage(`"hi"`))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, url+"/v1/jobs/"+job.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	var got jobs.Job
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got.ID != job.ID || got.Status != jobs.StatusQueued || got.Attempts != 0 {
		t.Errorf("GET job = %+v, want queued job %s", got, job.ID)
	}
	if got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("created_at = %v, want about now", got.CreatedAt)
	}
}

func TestGetJobNotFound(t *testing.T) {
	url, _ := newJobsServer(t, 1<<20)
	resp, body := get(t, url+"/v1/jobs/unknown")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
	if !bytes.Contains(body, []byte(`"error":"job not found"`)) {
		t.Errorf("body = %q, want a JSON not-found error", body)
	}
}

// FuzzDecodeJobRequest compares decodeJobRequest with referenceDecode, a
// slow decoder built on json.Decoder tokens: both must accept the same
// bodies, with the same type and the same payload bytes.
func FuzzDecodeJobRequest(f *testing.F) {
	for _, seed := range []string{
		`{"type":"echo","payload":{"a":1}}`, `{"type":"echo"}`, `{"type":""}`, `{}`, `[]`, `null`,
		`{"type":"echo"} {}`, `{"type":"echo","payload":`, `{"type":1}`, `{"Type":"echo"}`, "\xff",
		`{"type":"a","type":"b"}`, `{"type":"echo","payload":{"type":1,"type":2}}`, `{"type":"echo",}`,
		`{"typ\u0065":"echo","payload":"a\\"}`, ` { "payload" : [1, {"b": null}] , "type" : "e" } `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeJobRequest(bytes.NewReader(body))
		want, wantErr := referenceDecode(body)
		if err != nil && err.Error() == "" {
			t.Errorf("rejected %q with an empty error message", body)
		}
		switch {
		case err != nil && wantErr == nil:
			t.Fatalf("rejected %q (%v); the reference accepts it", body, err)
		case err == nil && wantErr != nil:
			t.Fatalf("accepted %q; the reference rejects it: %v", body, wantErr)
		case err != nil:
			return
		}
		if req.Type != want.Type {
			t.Errorf("body %q: type %q, the reference reads %q", body, req.Type, want.Type)
		}
		if !bytes.Equal(req.Payload, want.Payload) {
			t.Errorf("body %q: payload %q, the reference reads %q", body, req.Payload, want.Payload)
		}
	})
}

// referenceDecode applies the rules of decodeJobRequest the slow, obvious
// way: UTF-8 first, then json.Decoder tokens for the object's keys and
// json.RawMessage for its values.
func referenceDecode(body []byte) (createJobRequest, error) {
	var req createJobRequest
	if !utf8.Valid(body) {
		return req, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := referenceDelim(dec, '{'); err != nil {
		return req, err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, err
		}
		key, _ := tok.(string) // inside an object, dec.Token returns keys as strings
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return req, err
		}
		if seen[key] {
			return req, fmt.Errorf("duplicate %q", key)
		}
		seen[key] = true
		switch key {
		case "type":
			if value[0] != '"' || json.Unmarshal(value, &req.Type) != nil || req.Type == "" {
				return req, fmt.Errorf("bad type %s", value)
			}
		case "payload":
			req.Payload = value
		default:
			return req, fmt.Errorf("unknown key %q", key)
		}
	}
	if err := referenceDelim(dec, '}'); err != nil {
		return req, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("data after the object")
	}
	if !seen["type"] {
		return req, errors.New("no type")
	}
	if req.Payload == nil {
		req.Payload = json.RawMessage("null")
	}
	return req, nil
}

// referenceDelim reads the next token and fails unless it is delim.
func referenceDelim(dec *json.Decoder, delim json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != delim {
		return fmt.Errorf("got %v, want %v", tok, delim)
	}
	return nil
}
