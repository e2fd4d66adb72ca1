package telemetry

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// groupSpans converts spans to OTLP, one ResourceSpans per distinct
// resource and, inside it, one ScopeSpans per instrumentation scope. Groups
// keep the order in which their first span arrived.
func groupSpans(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	type resourceKey struct {
		attrs     attribute.Distinct
		schemaURL string
	}
	type scopeKey struct {
		resource                 resourceKey
		name, version, schemaURL string
		attrs                    attribute.Distinct
	}

	var out []*tracepb.ResourceSpans
	resources := map[resourceKey]*tracepb.ResourceSpans{}
	scopes := map[scopeKey]*tracepb.ScopeSpans{}
	for _, s := range spans {
		res := s.Resource()
		rk := resourceKey{attrs: res.Equivalent(), schemaURL: res.SchemaURL()}
		rs, ok := resources[rk]
		if !ok {
			rs = &tracepb.ResourceSpans{Resource: convertResource(res), SchemaUrl: res.SchemaURL()}
			resources[rk] = rs
			out = append(out, rs)
		}

		scope := s.InstrumentationScope()
		sk := scopeKey{
			resource:  rk,
			name:      scope.Name,
			version:   scope.Version,
			schemaURL: scope.SchemaURL,
			attrs:     scope.Attributes.Equivalent(),
		}
		ss, ok := scopes[sk]
		if !ok {
			ss = &tracepb.ScopeSpans{Scope: convertScope(scope), SchemaUrl: scope.SchemaURL}
			scopes[sk] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, convertSpan(s))
	}
	return out
}

func convertResource(res *resource.Resource) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: convertAttributes(res.Attributes())}
}

func convertScope(scope instrumentation.Scope) *commonpb.InstrumentationScope {
	return &commonpb.InstrumentationScope{
		Name:       scope.Name,
		Version:    scope.Version,
		Attributes: convertAttributes(scope.Attributes.ToSlice()),
	}
}

func convertSpan(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	traceID := sc.TraceID()
	spanID := sc.SpanID()
	span := &tracepb.Span{
		TraceId:                traceID[:],
		SpanId:                 spanID[:],
		TraceState:             sc.TraceState().String(),
		Flags:                  spanFlags(sc.TraceFlags(), s.Parent().IsRemote()),
		Name:                   s.Name(),
		Kind:                   convertKind(s.SpanKind()),
		StartTimeUnixNano:      unixNano(s.StartTime()),
		EndTimeUnixNano:        unixNano(s.EndTime()),
		Attributes:             convertAttributes(s.Attributes()),
		DroppedAttributesCount: count(s.DroppedAttributes()),
		DroppedEventsCount:     count(s.DroppedEvents()),
		DroppedLinksCount:      count(s.DroppedLinks()),
		Status:                 convertStatus(s.Status()),
	}
	if parent := s.Parent(); parent.SpanID().IsValid() {
		parentID := parent.SpanID()
		span.ParentSpanId = parentID[:]
	}
	for _, ev := range s.Events() {
		span.Events = append(span.Events, &tracepb.Span_Event{
			TimeUnixNano:           unixNano(ev.Time),
			Name:                   ev.Name,
			Attributes:             convertAttributes(ev.Attributes),
			DroppedAttributesCount: count(ev.DroppedAttributeCount),
		})
	}
	for _, link := range s.Links() {
		linkTraceID := link.SpanContext.TraceID()
		linkSpanID := link.SpanContext.SpanID()
		span.Links = append(span.Links, &tracepb.Span_Link{
			TraceId:                linkTraceID[:],
			SpanId:                 linkSpanID[:],
			TraceState:             link.SpanContext.TraceState().String(),
			Attributes:             convertAttributes(link.Attributes),
			DroppedAttributesCount: count(link.DroppedAttributeCount),
			Flags:                  spanFlags(link.SpanContext.TraceFlags(), link.SpanContext.IsRemote()),
		})
	}
	return span
}

// spanFlags puts the W3C trace flags in the low byte and records whether the
// parent (or linked) span context came from another process, as the OTLP
// SpanFlags enum defines.
func spanFlags(flags trace.TraceFlags, remote bool) uint32 {
	f := uint32(flags) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if remote {
		f |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return f
}

func convertKind(kind trace.SpanKind) tracepb.Span_SpanKind {
	switch kind {
	case trace.SpanKindInternal:
		return tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindServer:
		return tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindClient:
		return tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindProducer:
		return tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		return tracepb.Span_SPAN_KIND_CONSUMER
	default:
		return tracepb.Span_SPAN_KIND_UNSPECIFIED
	}
}

// convertStatus maps the status code by name because the numbers differ:
// Go has Unset 0, Error 1 and Ok 2, and OTLP has UNSET 0, OK 1 and ERROR 2.
func convertStatus(st sdktrace.Status) *tracepb.Status {
	switch st.Code {
	case codes.Error:
		return &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: st.Description}
	case codes.Ok:
		return &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	default:
		return &tracepb.Status{Code: tracepb.Status_STATUS_CODE_UNSET}
	}
}

func convertAttributes(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: convertValue(kv.Value)})
	}
	return out
}

// convertValue maps every attribute.Value type. EMPTY becomes an AnyValue
// with no field set, which OTLP defines as an empty value.
func convertValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return stringValue(v.AsString())
	case attribute.BYTESLICE:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}}
	case attribute.BOOLSLICE:
		return arrayValue(v.AsBoolSlice(), func(b bool) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: b}}
		})
	case attribute.INT64SLICE:
		return arrayValue(v.AsInt64Slice(), func(n int64) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}
		})
	case attribute.FLOAT64SLICE:
		return arrayValue(v.AsFloat64Slice(), func(f float64) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}
		})
	case attribute.STRINGSLICE:
		return arrayValue(v.AsStringSlice(), stringValue)
	case attribute.SLICE:
		return arrayValue(v.AsSlice(), convertValue)
	case attribute.MAP:
		kvs := &commonpb.KeyValueList{Values: convertAttributes(v.AsMap())}
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: kvs}}
	default:
		return &commonpb.AnyValue{}
	}
}

func stringValue(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func arrayValue[T any](items []T, convert func(T) *commonpb.AnyValue) *commonpb.AnyValue {
	values := make([]*commonpb.AnyValue, 0, len(items))
	for _, item := range items {
		values = append(values, convert(item))
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
		ArrayValue: &commonpb.ArrayValue{Values: values},
	}}
}

// unixNano returns 0 for the zero time, which OTLP reads as unset, instead
// of a negative number wrapped to uint64.
func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// count converts an SDK counter, never negative, to OTLP's uint32 field.
func count(n int) uint32 {
	if n <= 0 {
		return 0
	}
	if n > int(^uint32(0)) {
		return ^uint32(0)
	}
	return uint32(n)
}
