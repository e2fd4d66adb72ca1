package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Retry pacing for 429, 502, 503, 504 and connection errors. The export
// timeout (OTEL_EXPORTER_OTLP_TIMEOUT) bounds the total.
const (
	firstRetryDelay = 250 * time.Millisecond
	maxRetryDelay   = 4 * time.Second
)

// maxResponseBytes limits how much of a response body is read for a
// partial-success or error message.
const maxResponseBytes = 64 << 10

var errExporterShutdown = errors.New("otlp exporter is shut down")

// otlpExporter is an sdktrace.SpanExporter that POSTs
// ExportTraceServiceRequest messages as application/x-protobuf to the
// OTLP/HTTP traces endpoint.
//
// It replaces go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp,
// which in v1.47.0 links google.golang.org/grpc and grpc-gateway through its
// internal config and JSON packages and through the gRPC stubs in
// go.opentelemetry.io/proto/otlp/collector/trace/v1. Dropping it took the
// api binary from 23.5 MB to 12.5 MB and the worker from 23.5 MB to 12.1 MB
// (go1.26.8, linux/amd64, CGO_ENABLED=0 go build -trimpath -ldflags "-s -w").
// This exporter uses only the message types of trace/v1, common/v1 and
// resource/v1, which import no gRPC, and writes the request envelope itself.
type otlpExporter struct {
	cfg      exporterConfig
	client   *http.Client
	shutdown atomic.Bool
}

var _ sdktrace.SpanExporter = (*otlpExporter)(nil)

// newOTLPExporter configures an exporter from the OTEL_EXPORTER_OTLP_*
// variables that getenv returns.
func newOTLPExporter(getenv func(string) string) (*otlpExporter, error) {
	cfg, err := loadExporterConfig(getenv)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &otlpExporter{cfg: cfg, client: &http.Client{Transport: transport}}, nil
}

// ExportSpans sends spans in one request, retrying transient failures until
// the export timeout or ctx ends.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.shutdown.Load() {
		return errExporterShutdown
	}
	if len(spans) == 0 {
		return nil
	}
	body, err := e.encode(spans)
	if err != nil {
		return fmt.Errorf("encoding %d spans: %w", len(spans), err)
	}

	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		wait, err := e.send(ctx, body)
		if err == nil {
			return nil
		}
		if wait < 0 {
			return fmt.Errorf("exporting %d spans: %w", len(spans), err)
		}
		if wait == 0 {
			wait = backoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("exporting %d spans: no time left to retry after %s: %w",
				len(spans), wait.Round(time.Millisecond), err)
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("exporting %d spans: %w", len(spans), err)
		}
	}
}

// Shutdown makes later ExportSpans calls fail. The batch span processor
// calls it after its last export, so no request is in flight by then.
func (e *otlpExporter) Shutdown(ctx context.Context) error {
	e.shutdown.Store(true)
	e.client.CloseIdleConnections()
	return ctx.Err()
}

// encode writes the ExportTraceServiceRequest, whose only field is
// "repeated ResourceSpans resource_spans = 1", and compresses it when
// configured. Writing that field here keeps the collector/trace/v1 package
// and its gRPC imports out of the binary.
func (e *otlpExporter) encode(spans []sdktrace.ReadOnlySpan) ([]byte, error) {
	var msg []byte
	for _, rs := range groupSpans(spans) {
		b, err := proto.Marshal(rs)
		if err != nil {
			return nil, err
		}
		msg = protowire.AppendTag(msg, 1, protowire.BytesType)
		msg = protowire.AppendBytes(msg, b)
	}
	if !e.cfg.gzip {
		return msg, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(msg); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// send makes one attempt. On failure, wait is negative when retrying cannot
// help, positive when the server asked for that delay (Retry-After), and
// zero for a retry after the default backoff.
func (e *otlpExporter) send(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.endpoint, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	for key, values := range e.cfg.headers {
		req.Header[key] = values
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}

	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, err
		}
		return 0, err // connection refused, reset or similar
	}
	defer resp.Body.Close()
	respBody, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if readErr != nil || !isProtobuf(resp) {
			return 0, nil
		}
		return -1, partialSuccessError(respBody)
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable,
		resp.StatusCode == http.StatusGatewayTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), statusError(resp, respBody)
	default:
		return -1, statusError(resp, respBody)
	}
}

// partialSuccessError decodes an ExportTraceServiceResponse and returns an
// error when the collector rejected spans (partial_success = 1, holding
// rejected_spans = 1 and error_message = 2).
func partialSuccessError(body []byte) error {
	partial, ok := protoField(body, 1)
	if !ok {
		return nil
	}
	var rejected uint64
	if raw, ok := protoField(partial, 1); ok {
		rejected, _ = protowire.ConsumeVarint(raw)
	}
	if rejected == 0 {
		return nil
	}
	msg, _ := protoField(partial, 2)
	return fmt.Errorf("collector rejected %d spans: %s", rejected, msg)
}

// statusError describes a failed response. An OTLP server puts a
// google.rpc.Status in the body, whose message is field 2.
func statusError(resp *http.Response, body []byte) error {
	if isProtobuf(resp) {
		if msg, ok := protoField(body, 2); ok && len(msg) > 0 {
			return fmt.Errorf("collector returned %s: %s", resp.Status, msg)
		}
	}
	return fmt.Errorf("collector returned %s", resp.Status)
}

func isProtobuf(resp *http.Response) bool {
	return resp.Header.Get("Content-Type") == "application/x-protobuf"
}

// protoField returns the contents of the first occurrence of field num in
// a protobuf message: the bytes of a length-delimited field, or the
// varint-encoded value of a varint field. It returns false when the field
// is absent or the message is malformed.
func protoField(msg []byte, num protowire.Number) ([]byte, bool) {
	for len(msg) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(msg)
		if tagLen < 0 {
			return nil, false
		}
		msg = msg[tagLen:]
		valueLen := protowire.ConsumeFieldValue(n, typ, msg)
		if valueLen < 0 {
			return nil, false
		}
		if n == num {
			switch typ {
			case protowire.BytesType:
				v, _ := protowire.ConsumeBytes(msg)
				return v, true
			case protowire.VarintType:
				return msg[:valueLen], true
			}
		}
		msg = msg[valueLen:]
	}
	return nil, false
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date,
// and returns 0 when it is absent or invalid.
func retryAfter(header string) time.Duration {
	if header == "" {
		return 0
	}
	if secs, err := strconv.Atoi(header); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(header); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// backoff doubles from firstRetryDelay up to maxRetryDelay, with up to a
// quarter of jitter so that replicas do not retry in step.
func backoff(attempt int) time.Duration {
	d := maxRetryDelay
	if attempt < 5 {
		d = min(firstRetryDelay<<attempt, maxRetryDelay)
	}
	return d - rand.N(d/4) //nolint:gosec // jitter needs no cryptographic randomness
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
