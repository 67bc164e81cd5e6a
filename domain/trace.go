package domain

import "time"

// Trace is what a message or delta carries for observability only: never
// part of the envelope, never signed or validated, and lost without harm.
// The Kafka adapters carry it in record headers, the gateway from its feeds
// to the socket that writes the answer (docs/design.md, "Tracing").
type Trace struct {
	// Parent is the W3C traceparent of the span that handed the message
	// on; empty when tracing is off. (A string, so that messages and
	// deltas stay comparable.)
	Parent string
	// AskedAt is when the question the message belongs to was published
	// (its query record's timestamp); zero when unknown.
	AskedAt time.Time
	// PublishedAt is when this message or delta was published (its
	// record's timestamp); zero when unknown.
	PublishedAt time.Time
}
