package domain

import "time"

// Position is where Kafka (or its stand-in) stored a message.
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

// TopicInfo describes one of kchat's topics as the broker sees it.
type TopicInfo struct {
	Type              MessageType
	Name              string
	Partitions        int
	ReplicationFactor int
	Retention         time.Duration
	CleanupPolicy     string
}

// TopicName is the topic that carries messages of type t, under an optional
// deployment-wide prefix.
func TopicName(prefix string, t MessageType) string {
	return prefix + string(t)
}
