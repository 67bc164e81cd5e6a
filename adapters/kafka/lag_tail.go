package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Counting the records of a group's tail for ConsumerLag (lag.go): the
// range of a partition from the group's commit to the last stable offset
// holds records, transaction markers and aborted records; only the records
// a read_committed reader gets are lag.

// The fetch that counts the records between a commit and the end reads at
// most lagPartitionBytes of a partition (a few hundred of kchat's records)
// and lagFetchBytes in all per broker.
const (
	lagPartitionBytes = 128 << 10
	lagFetchBytes     = 4 << 20
)

// tail is a range of a partition, from a group's commit to the last stable
// offset, whose records must be counted.
type tail struct {
	lag      *partitionLag
	leader   int32
	topicID  [16]byte
	from, to int64
}

// count sets the lag of every tail to the records a read_committed reader
// gets in it, reading each partition once from its lowest tail, with one
// request per leader; a tail it cannot read gets -1.
func (l *ConsumerLag) count(ctx context.Context, tails []tail) error {
	type key struct {
		topic     string
		partition int32
	}
	byLeader := map[int32]map[key][]tail{}
	for _, t := range tails {
		k := key{t.lag.topic, t.lag.partition}
		if byLeader[t.leader] == nil {
			byLeader[t.leader] = map[key][]tail{}
		}
		byLeader[t.leader][k] = append(byLeader[t.leader][k], t)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(ts []tail, err error) {
		for _, t := range ts {
			t.lag.records = -1
		}
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for leader, parts := range byLeader {
		wg.Go(func() {
			if leader < 0 {
				for k, ts := range parts {
					fail(ts, fmt.Errorf("kafka %s[%d]: no leader", k.topic, k.partition))
				}
				return
			}
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, lagFetchBytes
			req.IsolationLevel = 1 // read_committed: aborted transactions come listed
			req.SessionEpoch = -1  // no fetch session: the broker keeps nothing for it
			topicIdx := map[string]int{}
			for k, ts := range parts {
				i, ok := topicIdx[k.topic]
				if !ok {
					i = len(req.Topics)
					topicIdx[k.topic] = i
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic, rt.TopicID = k.topic, ts[0].topicID
					req.Topics = append(req.Topics, rt)
				}
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = k.partition, lowest(ts), lagPartitionBytes
				req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
			}
			resp, err := req.RequestWith(ctx, l.cl.Broker(int(leader)))
			if err != nil {
				var all []tail
				for _, ts := range parts {
					all = append(all, ts...)
				}
				fail(all, fmt.Errorf("kafka fetch from broker %d: %w", leader, err))
				return
			}
			seen := map[key]bool{}
			for _, rt := range resp.Topics {
				name := rt.Topic
				for k, ts := range parts {
					if name == "" && ts[0].topicID == rt.TopicID {
						name = k.topic // v13+ names topics by id
					}
				}
				for i := range rt.Partitions {
					rp := &rt.Partitions[i]
					k := key{name, rp.Partition}
					ts, ok := parts[k]
					if !ok || seen[k] {
						continue
					}
					seen[k] = true
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						fail(ts, fmt.Errorf("kafka fetch %s[%d]: %w", k.topic, k.partition, err))
						continue
					}
					fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
						Offset: lowest(ts), IsolationLevel: kgo.ReadCommitted(), Topic: k.topic, Partition: k.partition,
					}, rp, kgo.DefaultDecompressor(), nil)
					if fp.Err != nil {
						fail(ts, fmt.Errorf("kafka fetch %s[%d]: %w", k.topic, k.partition, fp.Err))
						continue
					}
					for _, t := range ts {
						t.lag.records = records(fp.Records, next, t.from, t.to)
					}
				}
			}
			for k, ts := range parts {
				if !seen[k] {
					fail(ts, fmt.Errorf("kafka fetch %s[%d]: not in the response", k.topic, k.partition))
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// records is how many records a read_committed reader gets in [from, to),
// given recs, the records it got reading from at most from up to next (the
// offset after the last record, control record or aborted batch read):
// recs that fall in the range, plus every offset of it past next.
func records(recs []*kgo.Record, next, from, to int64) int64 {
	var n int64
	for _, r := range recs {
		if r.Offset >= from && r.Offset < to {
			n++
		}
	}
	return n + max(0, to-max(next, from))
}

func lowest(ts []tail) int64 {
	low := ts[0].from
	for _, t := range ts[1:] {
		low = min(low, t.from)
	}
	return low
}
