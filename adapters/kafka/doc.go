// Package kafka is kchat's Apache Kafka adapter, built on franz-go: the
// client, the publisher, topic administration and the versioned wire
// envelope.
package kafka
