package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadOptions says how ReadToEnd reads.
type ReadOptions struct {
	// Committed reads at read_committed: records of aborted transactions
	// are not returned, and a transaction still open at the end offsets is
	// waited for.
	Committed bool
	// Want makes the read wait until at least this many records are in the
	// topics (measuring the end offsets again while it waits), then read to
	// the end offsets measured once they are.
	Want int

	// afterMeasure, if set, is called after each measurement of the end
	// offsets (tests inject events there).
	afterMeasure func()
}

// ReadToEnd reads topics from their start offsets to their end offsets (high
// watermarks) as listed when it is called, and returns every record, ordered
// by topic, partition and offset. It never stops because no record came for
// a while: it returns once every partition's position reached its end
// offset, or fails when ctx ends first, naming the partitions it could not
// finish. A topic that does not exist holds no record.
//
// The end offsets count transaction markers, so the reader keeps control
// records to see its position reach them (and drops them from the result);
// at read_committed a transaction still open at the end offsets holds the
// read until it commits or aborts.
func ReadToEnd(ctx context.Context, brokers []string, opts ReadOptions, topics ...string) ([]*kgo.Record, error) {
	iso := kgo.ReadUncommitted()
	if opts.Committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(iso),
		kgo.KeepControlRecords(),
		kgo.MetadataMinAge(100*time.Millisecond), // a topic created while we wait is seen at once
		// A partition added while a fetch waits for data is fetched once that
		// fetch returns: keep the wait short.
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	defer cl.Close()
	r := &endReader{cl: cl, adm: kadm.NewClient(cl), topics: topics, parts: map[topicPartition]*partitionRead{}}
	for {
		if err := r.measure(ctx); err != nil {
			return nil, err
		}
		if opts.afterMeasure != nil {
			opts.afterMeasure()
		}
		for !r.reachedEnds() {
			if err := r.poll(ctx); err != nil {
				return nil, r.stuck(err, opts.Committed)
			}
		}
		if len(r.records) >= opts.Want {
			break
		}
		// Fewer records than wanted: wait for more, then measure again.
		wait, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		err := r.poll(wait)
		cancel()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%d records in %s, want at least %d: %w", len(r.records), strings.Join(topics, ", "), opts.Want, ctxErr)
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
	sort.Slice(r.records, func(i, j int) bool {
		a, b := r.records[i], r.records[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	return r.records, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// partitionRead is how far one partition was read and must be read.
type partitionRead struct {
	consuming bool
	next, end int64 // next offset to read; end offset measured
}

type endReader struct {
	cl      *kgo.Client
	adm     *kadm.Client
	topics  []string
	parts   map[topicPartition]*partitionRead
	records []*kgo.Record
}

// measure lists the start and end offsets of every partition of the topics
// and starts consuming the partitions that hold records. A listing with a
// partition error (no leader during an election) is tried again.
func (r *endReader) measure(ctx context.Context) error {
	for {
		starts, ends, err := r.list(ctx)
		if err == nil {
			r.apply(starts, ends)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("list offsets of %s: %w (last error: %w)", strings.Join(r.topics, ", "), ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *endReader) list(ctx context.Context) (starts, ends kadm.ListedOffsets, err error) {
	// The end offsets first: the start offsets listed after them can only
	// have moved forward (retention), never past what is left to read.
	if ends, err = r.adm.ListEndOffsets(ctx, r.topics...); err != nil {
		return nil, nil, err
	}
	if starts, err = r.adm.ListStartOffsets(ctx, r.topics...); err != nil {
		return nil, nil, err
	}
	for _, l := range []kadm.ListedOffsets{ends, starts} {
		var failed error
		l.Each(func(o kadm.ListedOffset) {
			if o.Err != nil && !errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				failed = fmt.Errorf("%s[%d]: %w", o.Topic, o.Partition, o.Err)
			}
		})
		if failed != nil {
			return nil, nil, failed
		}
	}
	return starts, ends, nil
}

func (r *endReader) apply(starts, ends kadm.ListedOffsets) {
	add := map[string]map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil || e.Partition < 0 {
			return // a topic that does not exist (yet)
		}
		tp := topicPartition{e.Topic, e.Partition}
		p := r.parts[tp]
		if p == nil {
			p = &partitionRead{}
			r.parts[tp] = p
		}
		p.end = e.Offset
		if p.consuming {
			return
		}
		start := e.Offset
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			start = s.Offset
		}
		p.next = start
		if start < e.Offset {
			p.consuming = true
			if add[e.Topic] == nil {
				add[e.Topic] = map[int32]kgo.Offset{}
			}
			add[e.Topic][e.Partition] = kgo.NewOffset().At(start)
		}
	})
	if len(add) > 0 {
		r.cl.AddConsumePartitions(add)
	}
}

func (r *endReader) reachedEnds() bool {
	for _, p := range r.parts {
		if p.next < p.end {
			return false
		}
	}
	return true
}

// poll takes one fetch and records what it holds. Data loss (the log was
// truncated under the reader) is an error; other fetch errors are retried
// by the client.
func (r *endReader) poll(ctx context.Context) error {
	fetches := r.cl.PollFetches(ctx)
	if fetches.IsClientClosed() {
		return errors.New("kafka reader closed")
	}
	var failed error
	fetches.EachError(func(topic string, p int32, err error) {
		var loss *kgo.ErrDataLoss
		switch {
		case errors.As(err, &loss):
			failed = fmt.Errorf("%s[%d]: %w", topic, p, err)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			if failed == nil {
				failed = err
			}
		}
	})
	fetches.EachRecord(func(rec *kgo.Record) {
		p := r.parts[topicPartition{rec.Topic, rec.Partition}]
		if p == nil {
			return
		}
		p.next = max(p.next, rec.Offset+1)
		if !rec.Attrs.IsControl() {
			r.records = append(r.records, rec)
		}
	})
	return failed
}

// stuck explains a read that could not reach its end offsets: which
// partitions, how far, and at read_committed whether an open transaction
// (last stable offset below the end) held them.
func (r *endReader) stuck(cause error, committed bool) error {
	var lso kadm.ListedOffsets
	if committed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lso, _ = r.adm.ListCommittedOffsets(ctx, r.topics...)
		cancel()
	}
	var parts []string
	for tp, p := range r.parts {
		if p.next >= p.end {
			continue
		}
		s := fmt.Sprintf("%s[%d] at %d of %d", tp.topic, tp.partition, p.next, p.end)
		if o, ok := lso.Lookup(tp.topic, tp.partition); ok && o.Err == nil && o.Offset < p.end {
			s += fmt.Sprintf(" (last stable offset %d: a transaction is open)", o.Offset)
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return fmt.Errorf("read %d records, did not reach the end offsets: %s: %w", len(r.records), strings.Join(parts, "; "), cause)
}
