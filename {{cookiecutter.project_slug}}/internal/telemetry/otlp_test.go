package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// receivedRequest is what the test collector recorded of one POST.
type receivedRequest struct {
	path    string
	header  http.Header
	body    []byte // decompressed
	decoded []*tracepb.ResourceSpans
}

// collector is an httptest OTLP/HTTP receiver that responds to each request
// with the next of its responses, repeating the last one.
type collector struct {
	t         *testing.T
	srv       *httptest.Server
	responses []func(w http.ResponseWriter)

	mu       sync.Mutex
	requests []receivedRequest
}

func newCollector(t *testing.T, responses ...func(w http.ResponseWriter)) *collector {
	t.Helper()
	c := &collector{t: t, responses: responses}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Errorf("reading request body: %v", err)
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			c.t.Errorf("opening gzip body: %v", err)
		} else if body, err = io.ReadAll(zr); err != nil {
			c.t.Errorf("reading gzip body: %v", err)
		}
	}
	req := receivedRequest{path: r.URL.Path, header: r.Header.Clone(), body: body}
	req.decoded, err = decodeRequest(body)
	if err != nil {
		c.t.Errorf("decoding request: %v", err)
	}

	c.mu.Lock()
	c.requests = append(c.requests, req)
	n := len(c.requests)
	c.mu.Unlock()

	switch {
	case len(c.responses) == 0:
		w.WriteHeader(http.StatusOK)
	case n <= len(c.responses):
		c.responses[n-1](w)
	default:
		c.responses[len(c.responses)-1](w)
	}
}

func (c *collector) received() []receivedRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]receivedRequest(nil), c.requests...)
}

// decodeRequest parses an ExportTraceServiceRequest without its generated
// type: field 1 holds each ResourceSpans.
func decodeRequest(body []byte) ([]*tracepb.ResourceSpans, error) {
	var out []*tracepb.ResourceSpans
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		body = body[n:]
		if num != 1 || typ != protowire.BytesType {
			return nil, errors.New("unexpected field in ExportTraceServiceRequest")
		}
		raw, n := protowire.ConsumeBytes(body)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		body = body[n:]
		rs := &tracepb.ResourceSpans{}
		if err := proto.Unmarshal(raw, rs); err != nil {
			return nil, err
		}
		out = append(out, rs)
	}
	return out, nil
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func envMap(m map[string]string) func(string) string {
	return func(key string) string { return m[key] }
}

func newTestExporter(t *testing.T, env map[string]string) *otlpExporter {
	t.Helper()
	exp, err := newOTLPExporter(envMap(env))
	if err != nil {
		t.Fatalf("newOTLPExporter: %v", err)
	}
	return exp
}

// recordSpans ends one span per name under a fresh provider and returns
// them as the batch span processor would hand them to an exporter.
func recordSpans(t *testing.T, names ...string) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := &spanRecorder{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
	for _, name := range names {
		_, span := tp.Tracer("test").Start(context.Background(), name)
		span.End()
	}
	return rec.spans
}

type spanRecorder struct{ spans []sdktrace.ReadOnlySpan }

func (r *spanRecorder) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	r.spans = append(r.spans, spans...)
	return nil
}

func (r *spanRecorder) Shutdown(context.Context) error { return nil }

func TestExporterSendsSpans(t *testing.T) {
	c := newCollector(t)
	exp := newTestExporter(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    c.srv.URL,
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		"OTEL_EXPORTER_OTLP_HEADERS":     "api-key=s3cr%20t, X-Tenant = blue",
	})

	res := resource.NewSchemaless(attribute.String("service.name", "orders-api"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	tracer := tp.Tracer("example/http", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithInstrumentationAttributes(attribute.String("scope.kind", "server")))

	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 1}, SpanID: trace.SpanID{0xbb, 2},
		TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx, parent := tracer.Start(context.Background(), "GET /v1/jobs/{id}",
		trace.WithSpanKind(trace.SpanKindServer))
	_, child := tracer.Start(ctx, "redis HGETALL",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{
			attribute.String("link.reason", "retry"),
		}}),
		trace.WithAttributes(
			attribute.Bool("b", true),
			attribute.Int64("i", -7),
			attribute.Float64("f", 1.5),
			attribute.String("s", "text"),
			attribute.BoolSlice("bs", []bool{true, false}),
			attribute.Int64Slice("is", []int64{1, 2}),
			attribute.Float64Slice("fs", []float64{0.5}),
			attribute.StringSlice("ss", []string{"a", "b"}),
		))
	child.AddEvent("cache miss", trace.WithAttributes(attribute.Int("keys", 3)))
	child.SetStatus(codes.Error, "connection reset")
	child.End()
	parent.SetStatus(codes.Ok, "")
	parent.End()

	reqs := c.received()
	if len(reqs) != 2 {
		t.Fatalf("collector got %d requests, want 2 (one per span with a syncer)", len(reqs))
	}
	first := reqs[0]
	if first.path != "/v1/traces" {
		t.Errorf("path = %q, want /v1/traces", first.path)
	}
	if got := first.header.Get("Content-Type"); got != "application/x-protobuf" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := first.header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
	if got := first.header.Get("Api-Key"); got != "s3cr t" {
		t.Errorf("api-key header = %q, want the percent-decoded value", got)
	}
	if got := first.header.Get("X-Tenant"); got != "blue" {
		t.Errorf("X-Tenant header = %q, want blue", got)
	}

	span := onlySpan(t, first.decoded)
	rs := first.decoded[0]
	if got := attrString(rs.GetResource().GetAttributes(), "service.name"); got != "orders-api" {
		t.Errorf("resource service.name = %q", got)
	}
	scope := rs.GetScopeSpans()[0].GetScope()
	if scope.GetName() != "example/http" || scope.GetVersion() != "1.2.3" {
		t.Errorf("scope = %s %s, want example/http 1.2.3", scope.GetName(), scope.GetVersion())
	}
	if got := attrString(scope.GetAttributes(), "scope.kind"); got != "server" {
		t.Errorf("scope attribute scope.kind = %q", got)
	}

	sc := child.SpanContext()
	traceID, spanID, parentID := sc.TraceID(), sc.SpanID(), parent.SpanContext().SpanID()
	if !bytes.Equal(span.GetTraceId(), traceID[:]) {
		t.Errorf("trace id = %x, want %s", span.GetTraceId(), traceID)
	}
	if !bytes.Equal(span.GetSpanId(), spanID[:]) {
		t.Errorf("span id = %x, want %s", span.GetSpanId(), spanID)
	}
	if !bytes.Equal(span.GetParentSpanId(), parentID[:]) {
		t.Errorf("parent span id = %x, want %s", span.GetParentSpanId(), parentID)
	}
	if span.GetName() != "redis HGETALL" {
		t.Errorf("name = %q", span.GetName())
	}
	if span.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kind = %v, want CLIENT", span.GetKind())
	}
	if span.GetFlags() != 0x101 {
		t.Errorf("flags = %#x, want 0x101 (sampled, local parent)", span.GetFlags())
	}
	if span.GetStartTimeUnixNano() == 0 || span.GetEndTimeUnixNano() < span.GetStartTimeUnixNano() {
		t.Errorf("times = %d..%d", span.GetStartTimeUnixNano(), span.GetEndTimeUnixNano())
	}

	checkAttributes(t, span.GetAttributes())

	if len(span.GetEvents()) != 1 {
		t.Fatalf("events = %v, want one", span.GetEvents())
	}
	ev := span.GetEvents()[0]
	if ev.GetName() != "cache miss" || ev.GetTimeUnixNano() == 0 {
		t.Errorf("event = %v", ev)
	}
	if got := ev.GetAttributes()[0].GetValue().GetIntValue(); got != 3 {
		t.Errorf("event attribute keys = %d, want 3", got)
	}

	if len(span.GetLinks()) != 1 {
		t.Fatalf("links = %v, want one", span.GetLinks())
	}
	link := span.GetLinks()[0]
	if !bytes.Equal(link.GetTraceId(), []byte{0xaa, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("link trace id = %x", link.GetTraceId())
	}
	if link.GetFlags() != 0x301 {
		t.Errorf("link flags = %#x, want 0x301 (sampled, remote)", link.GetFlags())
	}
	if got := attrString(link.GetAttributes(), "link.reason"); got != "retry" {
		t.Errorf("link attribute = %q", got)
	}

	if span.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status code = %v, want ERROR", span.GetStatus().GetCode())
	}
	if span.GetStatus().GetMessage() != "connection reset" {
		t.Errorf("status message = %q", span.GetStatus().GetMessage())
	}

	parentSpan := onlySpan(t, reqs[1].decoded)
	if len(parentSpan.GetParentSpanId()) != 0 {
		t.Errorf("root span has parent id %x", parentSpan.GetParentSpanId())
	}
	if parentSpan.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("root kind = %v, want SERVER", parentSpan.GetKind())
	}
	if parentSpan.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("root status = %v, want OK", parentSpan.GetStatus().GetCode())
	}
}

func checkAttributes(t *testing.T, attrs []*commonpb.KeyValue) {
	t.Helper()
	got := map[string]*commonpb.AnyValue{}
	for _, kv := range attrs {
		got[kv.GetKey()] = kv.GetValue()
	}
	if !got["b"].GetBoolValue() {
		t.Errorf("b = %v, want true", got["b"])
	}
	if got["i"].GetIntValue() != -7 {
		t.Errorf("i = %v, want -7", got["i"])
	}
	if got["f"].GetDoubleValue() != 1.5 {
		t.Errorf("f = %v, want 1.5", got["f"])
	}
	if got["s"].GetStringValue() != "text" {
		t.Errorf("s = %v, want text", got["s"])
	}
	if vs := got["bs"].GetArrayValue().GetValues(); len(vs) != 2 || !vs[0].GetBoolValue() || vs[1].GetBoolValue() {
		t.Errorf("bs = %v, want [true false]", got["bs"])
	}
	if vs := got["is"].GetArrayValue().GetValues(); len(vs) != 2 || vs[1].GetIntValue() != 2 {
		t.Errorf("is = %v, want [1 2]", got["is"])
	}
	if vs := got["fs"].GetArrayValue().GetValues(); len(vs) != 1 || vs[0].GetDoubleValue() != 0.5 {
		t.Errorf("fs = %v, want [0.5]", got["fs"])
	}
	if vs := got["ss"].GetArrayValue().GetValues(); len(vs) != 2 || vs[1].GetStringValue() != "b" {
		t.Errorf("ss = %v, want [a b]", got["ss"])
	}
}

func TestConvertValueNestedTypes(t *testing.T) {
	bytesValue := convertValue(attribute.ByteSliceValue([]byte{1, 2}))
	if !bytes.Equal(bytesValue.GetBytesValue(), []byte{1, 2}) {
		t.Errorf("bytes = %v", bytesValue)
	}
	slice := convertValue(attribute.SliceValue(attribute.StringValue("x"), attribute.IntValue(4)))
	if vs := slice.GetArrayValue().GetValues(); len(vs) != 2 || vs[0].GetStringValue() != "x" || vs[1].GetIntValue() != 4 {
		t.Errorf("slice = %v", slice)
	}
	m := convertValue(attribute.MapValue(attribute.String("k", "v")))
	if kvs := m.GetKvlistValue().GetValues(); len(kvs) != 1 || kvs[0].GetKey() != "k" {
		t.Errorf("map = %v", m)
	}
	if empty := convertValue(attribute.Value{}); empty.GetValue() != nil {
		t.Errorf("empty = %v, want no value set", empty)
	}
}

func TestGroupSpansByResourceAndScope(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	for _, service := range []string{"a", "b", "a"} {
		rec := &spanRecorder{}
		res := resource.NewSchemaless(attribute.String("service.name", service))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec), sdktrace.WithResource(res))
		for _, scope := range []string{"one", "two", "one"} {
			_, span := tp.Tracer(scope).Start(context.Background(), service+"/"+scope)
			span.End()
		}
		spans = append(spans, rec.spans...)
	}

	groups := groupSpans(spans)
	if len(groups) != 2 {
		t.Fatalf("got %d resource groups, want 2", len(groups))
	}
	for i, want := range []string{"a", "b"} {
		if got := attrString(groups[i].GetResource().GetAttributes(), "service.name"); got != want {
			t.Errorf("group %d service.name = %q, want %q", i, got, want)
		}
	}
	scopes := groups[0].GetScopeSpans()
	if len(scopes) != 2 {
		t.Fatalf("resource a has %d scopes, want 2", len(scopes))
	}
	if scopes[0].GetScope().GetName() != "one" || len(scopes[0].GetSpans()) != 4 {
		t.Errorf("scope one = %s with %d spans, want 4", scopes[0].GetScope().GetName(), len(scopes[0].GetSpans()))
	}
}

func TestTracesEndpoint(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, "http://localhost:4318/v1/traces"},
		{"base", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"},
		{"base trailing slash", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"},
		{"base with path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otlp/"}, "https://c/otlp/v1/traces"},
		{"traces as is", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}, "http://c:4318/custom"},
		{"traces keeps slash", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/"}, "http://c:4318/"},
		{"traces wins", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://base:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
		}, "http://traces:4318/v1/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadExporterConfig(envMap(tt.env))
			if err != nil {
				t.Fatalf("loadExporterConfig: %v", err)
			}
			if cfg.endpoint != tt.want {
				t.Errorf("endpoint = %q, want %q", cfg.endpoint, tt.want)
			}
		})
	}
}

func TestExporterConfigSettings(t *testing.T) {
	cfg, err := loadExporterConfig(envMap(map[string]string{
		"OTEL_EXPORTER_OTLP_HEADERS":            "a=1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "b=2",
		"OTEL_EXPORTER_OTLP_TIMEOUT":            "5000",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "1500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
	}))
	if err != nil {
		t.Fatalf("loadExporterConfig: %v", err)
	}
	if cfg.headers.Get("a") != "" || cfg.headers.Get("b") != "2" {
		t.Errorf("headers = %v, want only b from the TRACES_ variable", cfg.headers)
	}
	if cfg.timeout != 1500*time.Millisecond {
		t.Errorf("timeout = %s, want 1.5s", cfg.timeout)
	}
	if cfg.gzip {
		t.Error("gzip = true, want the TRACES_ value none")
	}

	cfg, err = loadExporterConfig(envMap(nil))
	if err != nil {
		t.Fatalf("loadExporterConfig: %v", err)
	}
	if cfg.timeout != 10*time.Second {
		t.Errorf("default timeout = %s, want 10s", cfg.timeout)
	}
}

func TestExporterConfigRejectsInvalid(t *testing.T) {
	tests := []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://c:4317"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"},
		{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"},
		{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP "},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
		{"OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newOTLPExporter(envMap(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.name, tt.value)
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q does not name %s", err, tt.name)
			}
		})
	}
}

func TestExporterConfigHidesHeaderValues(t *testing.T) {
	for _, raw := range []string{"api-key=abc%zz", "no-equals-sign-secret", "bad name=secret"} {
		_, err := loadExporterConfig(envMap(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": raw}))
		if err == nil {
			t.Fatalf("headers %q accepted", raw)
		}
		if !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") {
			t.Errorf("error %q does not name the variable", err)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "%zz") {
			t.Errorf("error %q shows a header value", err)
		}
	}
}

func TestExporterRetriesUnavailable(t *testing.T) {
	c := newCollector(t,
		status(http.StatusServiceUnavailable),
		status(http.StatusBadGateway),
		status(http.StatusOK))
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	if err := exp.ExportSpans(context.Background(), recordSpans(t, "a")); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if n := len(c.received()); n != 3 {
		t.Errorf("collector got %d requests, want 3", n)
	}
}

func TestExporterRetriesDroppedConnection(t *testing.T) {
	drop := func(w http.ResponseWriter) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijacking: %v", err)
			return
		}
		_ = conn.Close()
	}
	c := newCollector(t, drop, status(http.StatusOK))
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	if err := exp.ExportSpans(context.Background(), recordSpans(t, "a")); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if n := len(c.received()); n != 2 {
		t.Errorf("collector got %d requests, want 2", n)
	}
}

func TestExporterHonoursRetryAfter(t *testing.T) {
	c := newCollector(t,
		status(http.StatusTooManyRequests, "Retry-After", "1"),
		status(http.StatusOK))
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	start := time.Now()
	if err := exp.ExportSpans(context.Background(), recordSpans(t, "a")); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("retried after %s, want at least the 1s of Retry-After", elapsed)
	}
	if n := len(c.received()); n != 2 {
		t.Errorf("collector got %d requests, want 2", n)
	}
}

func TestExporterStopsWhenRetryAfterExceedsTimeout(t *testing.T) {
	c := newCollector(t, status(http.StatusServiceUnavailable, "Retry-After", "30"))
	exp := newTestExporter(t, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL,
		"OTEL_EXPORTER_OTLP_TIMEOUT":         "2000",
	})

	start := time.Now()
	err := exp.ExportSpans(context.Background(), recordSpans(t, "a"))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("ExportSpans error = %v, want one naming the 503", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("gave up after %s, want at once", elapsed)
	}
}

func TestExporterDoesNotRetryBadRequest(t *testing.T) {
	c := newCollector(t, status(http.StatusBadRequest))
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	if err := exp.ExportSpans(context.Background(), recordSpans(t, "a")); err == nil {
		t.Error("ExportSpans succeeded on 400")
	}
	if n := len(c.received()); n != 1 {
		t.Errorf("collector got %d requests, want 1", n)
	}
}

func TestExporterReportsPartialSuccess(t *testing.T) {
	var partial []byte
	partial = protowire.AppendTag(partial, 1, protowire.VarintType)
	partial = protowire.AppendVarint(partial, 2)
	partial = protowire.AppendTag(partial, 2, protowire.BytesType)
	partial = protowire.AppendString(partial, "spans too old")
	var resp []byte
	resp = protowire.AppendTag(resp, 1, protowire.BytesType)
	resp = protowire.AppendBytes(resp, partial)

	c := newCollector(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	})
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	err := exp.ExportSpans(context.Background(), recordSpans(t, "a", "b"))
	if err == nil || !strings.Contains(err.Error(), "rejected 2 spans: spans too old") {
		t.Errorf("ExportSpans error = %v, want the partial success", err)
	}
}

func TestExporterRespectsContext(t *testing.T) {
	release := make(chan struct{})
	c := newCollector(t, func(w http.ResponseWriter) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	defer close(release)
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := exp.ExportSpans(ctx, recordSpans(t, "a"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExportSpans error = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("returned after %s, want soon after the 200ms deadline", elapsed)
	}
}

func TestExportAfterShutdownFails(t *testing.T) {
	c := newCollector(t)
	exp := newTestExporter(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.srv.URL})

	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	err := exp.ExportSpans(context.Background(), recordSpans(t, "a"))
	if !errors.Is(err, errExporterShutdown) {
		t.Errorf("ExportSpans after Shutdown = %v, want errExporterShutdown", err)
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("collector got %d requests after Shutdown", n)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	for attempt := range 70 {
		d := backoff(attempt)
		if d <= 0 || d > maxRetryDelay {
			t.Errorf("backoff(%d) = %s, want within (0, %s]", attempt, d, maxRetryDelay)
		}
	}
}

func onlySpan(t *testing.T, rss []*tracepb.ResourceSpans) *tracepb.Span {
	t.Helper()
	if len(rss) != 1 || len(rss[0].GetScopeSpans()) != 1 || len(rss[0].GetScopeSpans()[0].GetSpans()) != 1 {
		t.Fatalf("request = %v, want exactly one span", rss)
	}
	return rss[0].GetScopeSpans()[0].GetSpans()[0]
}

func attrString(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
