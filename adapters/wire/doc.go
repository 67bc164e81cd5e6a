// Package wire holds kchat's JSON shapes, version 1: the message envelope
// and the citation, turn and answer it is made of. Every adapter that
// speaks JSON uses them — Kafka record values, Redis session turns, HTTP
// bodies, WebSocket frames — and so do clients such as cmd/ask: one
// definition per shape, so the places a citation travels through cannot
// drift apart (docs/design.md, "Topics and wire format"). The struct tags
// beyond json (doc, enum, minimum) describe the fields in the OpenAPI
// documents; JSON encoders ignore them.
package wire
