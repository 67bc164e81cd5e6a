package kafka

import "github.com/kchat/kchat/domain"

// Topic is a topic kchat creates: its name and partition count; every
// topic is created with the Config's replication factor, retention and
// cleanup.policy=delete.
type Topic struct {
	Name       string
	Partitions int
}

// PipelineTopics are the query, prompt and answer topics, under the
// Config's prefix, with its partition count.
func PipelineTopics(cfg Config) []Topic {
	topics := make([]Topic, len(domain.MessageTypes))
	for i, t := range domain.MessageTypes {
		topics[i] = Topic{Name: domain.TopicName(cfg.TopicPrefix, t), Partitions: cfg.Partitions}
	}
	return topics
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
