package kafka

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config configures the Kafka client and kchat's topics. The env tags name
// the KCHAT_* variables a binary loads it from.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `env:"KCHAT_KAFKA_BROKERS" envSeparator:","`
	// ClientID names this process to the brokers.
	ClientID string `env:"KCHAT_KAFKA_CLIENT_ID" envDefault:"kchat"`
	// DeliveryTimeout bounds how long a produce may wait for an
	// acknowledgement; past it the HTTP caller gets 503.
	DeliveryTimeout time.Duration `env:"KCHAT_KAFKA_DELIVERY_TIMEOUT" envDefault:"10s"`
	// Compression is the codec of every batch this process produces (the
	// producer, the gateway's publisher, the answerer's stages, the
	// consumer's acknowledgements). An unknown name fails to load, naming
	// the variable; the zero value is DefaultCompression.
	Compression Compression `env:"KCHAT_KAFKA_COMPRESSION" envDefault:"gzip"`

	// TopicPrefix is put in front of query, prompt and answer.
	TopicPrefix string `env:"KCHAT_TOPIC_PREFIX"`
	// Partitions of each topic created at startup.
	Partitions int `env:"KCHAT_TOPIC_PARTITIONS" envDefault:"3"`
	// AnswerPartitions of the answer and stream topics created at startup:
	// the gateways share them (docs/design.md, "Answer routing"), so at
	// least as many as gateways; zero means Partitions.
	AnswerPartitions int `env:"KCHAT_ANSWER_PARTITIONS" envDefault:"12"`
	// ReplicationFactor of each topic created at startup (3 in production).
	ReplicationFactor int `env:"KCHAT_TOPIC_REPLICATION_FACTOR" envDefault:"1"`
	// Retention of each topic created at startup (retention.ms).
	Retention time.Duration `env:"KCHAT_TOPIC_RETENTION" envDefault:"2m"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{
		ClientID:          "kchat",
		DeliveryTimeout:   10 * time.Second,
		Compression:       DefaultCompression,
		Partitions:        3,
		AnswerPartitions:  12,
		ReplicationFactor: 1,
		Retention:         2 * time.Minute,
	}
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("KCHAT_KAFKA_BROKERS is required: a comma-separated list of host:port")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return fmt.Errorf("KCHAT_KAFKA_BROKERS: %q is not host:port", b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("KCHAT_KAFKA_BROKERS: %q has no valid port", b)
		}
	}
	switch {
	case c.ClientID == "":
		return fmt.Errorf("KCHAT_KAFKA_CLIENT_ID must not be empty")
	case c.DeliveryTimeout < 100*time.Millisecond || c.DeliveryTimeout > 5*time.Minute:
		return fmt.Errorf("KCHAT_KAFKA_DELIVERY_TIMEOUT must be between 100ms and 5m, got %s", c.DeliveryTimeout)
	case c.Partitions < 1 || c.Partitions > 10000:
		return fmt.Errorf("KCHAT_TOPIC_PARTITIONS must be between 1 and 10000, got %d", c.Partitions)
	case c.AnswerPartitions < 0 || c.AnswerPartitions > 10000:
		return fmt.Errorf("KCHAT_ANSWER_PARTITIONS must be between 1 and 10000, got %d", c.AnswerPartitions)
	case c.ReplicationFactor < 1 || c.ReplicationFactor > 32:
		return fmt.Errorf("KCHAT_TOPIC_REPLICATION_FACTOR must be between 1 and 32, got %d", c.ReplicationFactor)
	case c.Retention < time.Second:
		return fmt.Errorf("KCHAT_TOPIC_RETENTION must be at least 1s, got %s", c.Retention)
	case len(c.TopicPrefix) > 200:
		return fmt.Errorf("KCHAT_TOPIC_PREFIX is longer than 200 characters")
	}
	return nil
}

// answerPartitions is the partition count of the answer and stream topics.
func (c Config) answerPartitions() int {
	if c.AnswerPartitions > 0 {
		return c.AnswerPartitions
	}
	return c.Partitions
}
