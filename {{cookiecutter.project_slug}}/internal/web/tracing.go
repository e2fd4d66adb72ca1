package web

import (
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// endSpan names the server span after the matched pattern, as the
// OpenTelemetry HTTP conventions ask ("GET /v1/jobs/{id}"), and records the
// outcome. Spans of unmatched requests keep the bare method as their name.
func endSpan(span trace.Span, pattern, route string, status int) {
	if pattern != "" {
		span.SetName(pattern)
		span.SetAttributes(semconv.HTTPRoute(route))
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
