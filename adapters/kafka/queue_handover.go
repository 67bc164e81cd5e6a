package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/adapters/internal/ledger"
)

// A partition handed to another member carries with its last commit the
// offsets acknowledged beyond it (in the commit's metadata), and the
// member that gets it skips them: a graceful rebalance serves nothing
// acknowledged again, even with ack=manual leases acknowledged out of
// order (docs/design.md, "Consumer").

// maxHandover bounds the metadata of one partition's commit; brokers
// accept 4096 bytes by default (offset.metadata.max.bytes). Offsets that
// do not fit are served again, never lost.
const maxHandover = 3000

// offsetsFetched reads the handed-over offsets of newly assigned partitions
// from their commits' metadata. franz-go calls it after assigned and
// before fetching starts.
func (tq *topicQueue) offsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	topics := resp.Topics
	for _, g := range resp.Groups {
		if g.Group == tq.group {
			for _, t := range g.Topics {
				topics = append(topics, kmsg.OffsetFetchResponseTopic{Topic: t.Topic, Partitions: convertPartitions(t.Partitions)})
			}
		}
	}
	tq.mu.Lock()
	defer tq.mu.Unlock()
	for _, t := range topics {
		if t.Topic != tq.topic {
			continue
		}
		for _, p := range t.Partitions {
			epoch, ok := tq.epochs[p.Partition]
			if !ok || p.Metadata == nil || p.Offset < 0 {
				continue
			}
			if done := ledger.DecodeDone(*p.Metadata, p.Offset); len(done) > 0 {
				tq.ledger.Skip(p.Partition, epoch, p.Offset, done)
			}
		}
	}
	return nil
}

func convertPartitions(ps []kmsg.OffsetFetchResponseGroupTopicPartition) []kmsg.OffsetFetchResponseTopicPartition {
	out := make([]kmsg.OffsetFetchResponseTopicPartition, len(ps))
	for i, p := range ps {
		out[i] = kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition, Offset: p.Offset, Metadata: p.Metadata}
	}
	return out
}

// commitHandover commits offsets, each partition with its metadata (the
// offsets done beyond it), as this member of the group.
func (tq *topicQueue) commitHandover(ctx context.Context, offsets map[int32]int64, meta map[int32]string) error {
	if len(offsets) == 0 {
		return nil
	}
	member, generation := tq.cl.GroupMetadata()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = tq.group, member, generation
	topic := kmsg.NewOffsetCommitRequestTopic()
	topic.Topic = tq.topic
	// OffsetCommit v10 names topics by id, not by name.
	details, err := tq.adm.ListTopics(ctx, tq.topic)
	if err != nil {
		return fmt.Errorf("commit on handover: topic id: %w", err)
	}
	if d, ok := details[tq.topic]; ok {
		topic.TopicID = d.ID
	}
	for p, o := range offsets {
		part := kmsg.NewOffsetCommitRequestTopicPartition()
		part.Partition, part.Offset, part.LeaderEpoch = p, o, -1
		if m, ok := meta[p]; ok {
			part.Metadata = &m
		}
		topic.Partitions = append(topic.Partitions, part)
	}
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, tq.cl)
	if err != nil {
		return fmt.Errorf("commit on handover: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if perr := kerrFor(p.ErrorCode); perr != nil {
				return fmt.Errorf("commit on handover, partition %d: %w", p.Partition, perr)
			}
		}
	}
	return nil
}
