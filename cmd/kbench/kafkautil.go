package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkaclean"
)

// benchPartitions matches kchat's default KCHAT_TOPIC_PARTITIONS.
const benchPartitions = 3

// createTopics creates topics like kchat's (3 partitions, replication 1),
// with a retention long enough that nothing expires during a run.
func createTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	retention := "600000"
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, benchPartitions, 1, map[string]*string{"retention.ms": &retention}, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// prefill writes n envelopes of type typ to topic, keyed over 64 sessions,
// with the message text "seq-<i>", as fast as the broker takes them.
func prefill(ctx context.Context, brokers []string, topic string, typ domain.MessageType, n, size int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	pad := strings.Repeat("x", max(0, size-16))
	errs := make(chan error, 1)
	for i := range n {
		rec, err := kafka.NewRecord(topic, domain.Message{
			MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%64), UserID: "kbench",
			Type: typ, Text: fmt.Sprintf("seq-%d %s", i, pad), ReplyTo: domain.NewMessageID(), CreatedAt: time.Now(),
		})
		if err != nil {
			return err
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return fmt.Errorf("prefill %s: %w", topic, err)
	default:
		return nil
	}
}

// committed returns the group's committed offset per partition of topic.
func committed(ctx context.Context, brokers []string, group, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// deleteTopics deletes every topic starting with one of the prefixes.
func deleteTopics(ctx context.Context, brokers []string, prefixes []string) error {
	if len(prefixes) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	return kafkaclean.DeletePrefixed(ctx, kadm.NewClient(cl), prefixes...)
}
