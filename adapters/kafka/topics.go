package kafka

import (
	"time"

	"github.com/kchat/kchat/domain"
)

// Topic is a topic kchat creates: its name and partition count; every
// topic is created with the Config's replication factor and
// cleanup.policy=delete, and with the Config's retention unless Retention
// is set.
type Topic struct {
	Name       string
	Partitions int
	// Retention, when not zero, is the topic's own retention.ms (and
	// segment.ms, since a broker deletes only whole segments and a segment
	// rolls after a week by default).
	Retention time.Duration
}

// StreamRetention is how long the stream topic keeps answer deltas: they
// matter only while their answer is being generated (a gateway reads the
// topic from where it ended when it started), and the final answer, on the
// answer topic, replaces them. A minute outlasts any generation a reader
// could still be following, with room for a slow gateway.
const StreamRetention = time.Minute

// PipelineTopics are the query, prompt and answer topics, under the
// Config's prefix, with its partition counts (the answer topic's own).
func PipelineTopics(cfg Config) []Topic {
	topics := make([]Topic, len(domain.MessageTypes))
	for i, t := range domain.MessageTypes {
		topics[i] = Topic{Name: domain.TopicName(cfg.TopicPrefix, t), Partitions: cfg.Partitions}
		if t == domain.TypeAnswer {
			topics[i].Partitions = cfg.answerPartitions()
		}
	}
	return topics
}

// StreamTopics is the stream topic (answer deltas, docs/design.md,
// "Streaming answers"), with the answer topic's partition count, routed
// like the answers, and kept StreamRetention (or the Config's
// retention when shorter).
func StreamTopics(cfg Config) []Topic {
	return []Topic{{Name: domain.StreamTopicName(cfg.TopicPrefix), Partitions: cfg.answerPartitions(), Retention: min(StreamRetention, cfg.Retention)}}
}

// DeadLetterTopics are the dead-letter topics of the answerer's stages,
// which read the query and prompt topics.
func DeadLetterTopics(cfg Config) []Topic {
	return []Topic{
		{Name: DeadLetterTopic(domain.TopicName(cfg.TopicPrefix, domain.TypeQuery)), Partitions: cfg.Partitions},
		{Name: DeadLetterTopic(domain.TopicName(cfg.TopicPrefix, domain.TypePrompt)), Partitions: cfg.Partitions},
	}
}

// AcksTopic is the internal topic that carries acknowledgements forwarded
// between the consumer's replicas. One partition: every replica reads all
// of it, and it carries little.
func AcksTopic(cfg Config) Topic {
	return Topic{Name: cfg.TopicPrefix + "kchat-consumer-acks", Partitions: 1}
}

// DeadLetterTopic is where a stage puts input records it cannot process
// (not an envelope, or rejected by the transform), with the reason in a
// header.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }
