// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables.
package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
)

// Shutdown flushes buffered spans and stops the exporter.
type Shutdown func(context.Context) error

// Setup installs the global tracer provider and the W3C trace context and
// baggage propagators, and returns the provider's tracer for the service.
//
// With enabled false the global provider is a no-op and the returned tracer
// is nil, so that callers can skip span handling altogether. Otherwise a
// batch span processor sends spans to the OTLP/HTTP exporter in otlp.go,
// configured by OTEL_EXPORTER_OTLP_*, and the sampler and resource follow
// OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
// serviceName is used when OTEL_SERVICE_NAME is unset.
func Setup(ctx context.Context, enabled bool, serviceName string) (trace.Tracer, Shutdown, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	if !enabled {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return nil, func(context.Context) error { return nil }, nil
	}

	exporter, err := newOTLPExporter(os.Getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("creating otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		// Later options override earlier ones, so the environment wins.
		resource.WithAttributes(
			semconv.ServiceName(serviceName),
			semconv.ServiceVersion(buildinfo.Version),
		),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("describing otel resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return tp.Tracer(serviceName), tp.Shutdown, nil
}
