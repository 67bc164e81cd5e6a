package history

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
)

// Record is a record found in a topic, reduced to what the checks need.
type Record struct {
	Position
	Key, ID string
	Value   []byte
}

// Reader reads a scenario's topics after the run.
type Reader struct {
	Brokers []string
	// Committed reads at read_committed (the answerer's transactional
	// topics); otherwise every written record counts, aborted ones too.
	Committed bool
	// Timeout bounds the read; 2 minutes when zero. Reaching the end
	// offsets takes longer only when a partition cannot be read.
	Timeout time.Duration
	// ID finds a record's message id; the kchat-message-id header when nil.
	ID func(*kgo.Record) string
}

// Read lists the end offsets of topics now, reads every partition from its
// start to them (kafkatest.ReadToEnd) and fails the test if it cannot.
// Call it after the run, once no client writes any more.
func (r Reader) Read(t testing.TB, topics ...string) []Record {
	t.Helper()
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	id := r.ID
	if id == nil {
		id = HeaderID
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs, err := kafkatest.ReadToEnd(ctx, r.Brokers, kafkatest.ReadOptions{Committed: r.Committed}, topics...)
	if err != nil {
		t.Fatalf("history: read %v: %v", topics, err)
	}
	out := make([]Record, len(recs))
	for i, rec := range recs {
		out[i] = Record{
			Position: Position{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset},
			Key:      string(rec.Key),
			ID:       id(rec),
			Value:    rec.Value,
		}
	}
	return out
}

// HeaderID is the message id kchat puts in every record's headers, or ""
// without one.
func HeaderID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderMessageID {
			return string(h.Value)
		}
	}
	return ""
}
