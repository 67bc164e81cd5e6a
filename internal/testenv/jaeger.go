package testenv

// Variables that point tests at the Jaeger of make services-up.
const (
	// JaegerVar is the base URL of Jaeger's query API and UI, such as
	// http://127.0.0.1:16686 (GET /api/services, /api/traces?service=...).
	JaegerVar = "KCHAT_TEST_JAEGER_URL"
	// OTLPVar is the OTLP/HTTP endpoint spans are sent to, such as
	// http://127.0.0.1:4318: what OTEL_EXPORTER_OTLP_ENDPOINT takes (the
	// SDK appends /v1/traces).
	OTLPVar = "KCHAT_TEST_OTLP_ENDPOINT"
)

// Jaeger returns the query URL and the OTLP/HTTP endpoint of the real
// Jaeger, or skips (fails under CI) when KCHAT_TEST_JAEGER_URL or
// KCHAT_TEST_OTLP_ENDPOINT is not set.
func Jaeger(t TB) (queryURL, otlpEndpoint string) {
	t.Helper()
	if queryURL = require(t, JaegerVar, "a real Jaeger (its query API)"); queryURL == "" {
		return "", "" // skipped or failed (a TB whose Skipf returns: name one variable)
	}
	otlpEndpoint = require(t, OTLPVar, "a real Jaeger (its OTLP/HTTP receiver)")
	return queryURL, otlpEndpoint
}
