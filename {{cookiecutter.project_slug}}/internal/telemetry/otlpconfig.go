package telemetry

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults from the OpenTelemetry specification, "OTLP Exporter
// Configuration".
const (
	defaultTracesEndpoint = "http://localhost:4318/v1/traces"
	defaultExportTimeout  = 10 * time.Second
	tracesPath            = "v1/traces"
)

// exporterConfig is the OTLP/HTTP trace exporter's settings, read from the
// OTEL_EXPORTER_OTLP_* environment variables.
type exporterConfig struct {
	endpoint string // full URL of the traces endpoint
	headers  http.Header
	timeout  time.Duration // budget of one Export call, retries included
	gzip     bool
}

// loadExporterConfig reads the OTLP exporter variables. A TRACES_ variable
// replaces its generic counterpart, as the specification requires. The error
// names every invalid variable, but never a header value, because headers
// often carry API keys.
func loadExporterConfig(getenv func(string) string) (exporterConfig, error) {
	env := otlpEnv{getenv: getenv}
	cfg := exporterConfig{
		endpoint: env.endpoint(),
		headers:  env.headers(),
		timeout:  env.timeout(),
		gzip:     env.gzip(),
	}
	env.rejectUnsupported()
	if err := env.err(); err != nil {
		return exporterConfig{}, err
	}
	return cfg, nil
}

// otlpEnv collects one error per invalid variable, like config.Load does.
type otlpEnv struct {
	getenv func(string) string
	errs   []error
}

func (e *otlpEnv) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("loading otlp exporter config: %w", errors.Join(e.errs...))
}

func (e *otlpEnv) invalid(name, value, allowed string) {
	e.errs = append(e.errs, fmt.Errorf("invalid %s %q: %s", name, value, allowed))
}

// lookup returns the trimmed value of the traces-specific variable when it
// is set, else that of the generic one, with the name it came from.
func (e *otlpEnv) lookup(suffix string) (name, value string) {
	for _, name := range []string{
		"OTEL_EXPORTER_OTLP_TRACES_" + suffix,
		"OTEL_EXPORTER_OTLP_" + suffix,
	} {
		if v := strings.TrimSpace(e.getenv(name)); v != "" {
			return name, v
		}
	}
	return "", ""
}

// endpoint returns OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, or
// OTEL_EXPORTER_OTLP_ENDPOINT with v1/traces appended to its path.
func (e *otlpEnv) endpoint() string {
	const tracesName = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	const baseName = "OTEL_EXPORTER_OTLP_ENDPOINT"

	name, raw := tracesName, strings.TrimSpace(e.getenv(tracesName))
	if raw == "" {
		name, raw = baseName, strings.TrimSpace(e.getenv(baseName))
	}
	if raw == "" {
		return defaultTracesEndpoint
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.invalid(name, raw, "want an http:// or https:// URL such as http://otel-collector:4318")
		return ""
	}
	if name == baseName {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + tracesPath
		u.RawPath = ""
	}
	return u.String()
}

// headers parses a comma-separated list of key=value pairs whose values
// are percent-encoded, as the W3C Baggage header writes them.
func (e *otlpEnv) headers() http.Header {
	name, raw := e.lookup("HEADERS")
	h := http.Header{}
	if raw == "" {
		return h
	}
	for i, pair := range strings.Split(raw, ",") {
		key, value, found := strings.Cut(pair, "=")
		key = strings.TrimSpace(key)
		decoded, err := url.PathUnescape(strings.TrimSpace(value))
		switch {
		case strings.TrimSpace(pair) == "":
			continue
		case !found || !isToken(key):
			e.errs = append(e.errs, fmt.Errorf(
				"invalid %s: entry %d is not key=value with a valid header name", name, i+1))
		case err != nil || strings.ContainsAny(decoded, "\r\n\x00"):
			// The message leaves out the value because it may be a secret.
			e.errs = append(e.errs, fmt.Errorf(
				"invalid %s: the value of %s is not valid percent-encoded text", name, key))
		default:
			h.Add(key, decoded)
		}
	}
	return h
}

// timeout parses the export timeout, a whole number of milliseconds.
func (e *otlpEnv) timeout() time.Duration {
	name, raw := e.lookup("TIMEOUT")
	if raw == "" {
		return defaultExportTimeout
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
		e.invalid(name, raw, "want milliseconds from 1 to 3600000, such as 10000")
		return defaultExportTimeout
	}
	return time.Duration(ms) * time.Millisecond
}

func (e *otlpEnv) gzip() bool {
	name, raw := e.lookup("COMPRESSION")
	switch raw {
	case "", "none":
		return false
	case "gzip":
		return true
	}
	e.invalid(name, raw, "want gzip or none")
	return false
}

// rejectUnsupported fails on settings this exporter does not implement, so
// that a deployment relying on them learns at start rather than losing spans.
func (e *otlpEnv) rejectUnsupported() {
	if name, raw := e.lookup("PROTOCOL"); raw != "" && raw != "http/protobuf" {
		e.invalid(name, raw, "this service exports only http/protobuf")
	}
	// NOTE: custom CA and client certificates are not implemented. Go reads
	// extra CAs from SSL_CERT_FILE or SSL_CERT_DIR (crypto/x509), which
	// covers a private collector CA but not mutual TLS.
	for _, suffix := range []string{"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
		if name, raw := e.lookup(suffix); raw != "" {
			e.errs = append(e.errs, fmt.Errorf(
				"unsupported %s: this service's exporter has no TLS file options, "+
					"so add a private CA through SSL_CERT_FILE instead", name))
		}
	}
}

// isToken reports whether s is a valid HTTP header name (RFC 9110, token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
