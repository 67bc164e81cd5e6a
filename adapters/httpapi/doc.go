// Package httpapi is kchat's HTTP inbound adapter: huma v2 operations on a
// chi router, the system routes every service shares (health, readiness,
// metrics, OpenAPI, offline docs) and the one place errors become RFC 9457
// problem responses.
package httpapi
