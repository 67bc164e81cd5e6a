package kafka

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// HeaderReplyPartition carries a query's domain.Reply from the gateway to
// the answerer (copied by the retrieve stage onto the prompt, read by the
// generate stage), and names the partition of the answer and of its deltas
// (docs/design.md, "Answer routing").
const HeaderReplyPartition = "kchat-reply-partition"

// replyHeader is r's reply partition header, if it carries one.
func replyHeader(r *kgo.Record) (domain.Reply, bool) {
	for _, h := range r.Headers {
		if h.Key == HeaderReplyPartition {
			p, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil || p < 0 {
				return domain.Reply{}, false
			}
			return domain.ReplyTo(int32(p)), true
		}
	}
	return domain.Reply{}, false
}

// replyRecordHeader is reply as a record header.
func replyRecordHeader(reply domain.Reply) (kgo.RecordHeader, bool) {
	if !reply.Set {
		return kgo.RecordHeader{}, false
	}
	return kgo.RecordHeader{Key: HeaderReplyPartition, Value: strconv.AppendInt(nil, int64(reply.Partition), 10)}, true
}

// replyPartitioner puts a record of the answer or the stream topic that
// carries a reply partition into that partition, and every other record
// where franz-go's default (by key) would. A reply partition the topic does
// not have (the topic was made smaller than the gateway believes; it
// cannot shrink, so only a misconfiguration) falls back to the key.
func replyPartitioner(cfg Config) kgo.Partitioner {
	return replyPartitionerFor{
		base: kgo.StickyKeyPartitioner(nil),
		topics: map[string]bool{
			domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer): true,
			domain.StreamTopicName(cfg.TopicPrefix):              true,
		},
	}
}

type replyPartitionerFor struct {
	base   kgo.Partitioner
	topics map[string]bool
}

func (p replyPartitionerFor) ForTopic(topic string) kgo.TopicPartitioner {
	base := p.base.ForTopic(topic)
	if !p.topics[topic] {
		return base
	}
	return replyTopicPartitioner{base}
}

type replyTopicPartitioner struct{ base kgo.TopicPartitioner }

func (p replyTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := replyHeader(r); ok {
		return true
	}
	return p.base.RequiresConsistency(r)
}

func (p replyTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if reply, ok := replyHeader(r); ok && int(reply.Partition) < n {
		return int(reply.Partition)
	}
	return p.base.Partition(r, n)
}
