// Package kafkatest gives tests a Kafka to talk to, an in-process kfake
// cluster or the real broker of make services-up, and an independent reader
// to check what landed in it.
package kafkatest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/internal/kafkaclean"
	"github.com/kchat/kchat/internal/testenv"
)

// Fake starts an in-process kfake cluster for the test and returns its
// brokers.
func Fake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Real returns the real brokers (skipping, or failing under CI, without
// them) and deletes every topic under prefix when the test ends.
func Real(t testing.TB, prefix string) []string {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	t.Cleanup(func() { DeleteTopics(t, brokers, prefix) })
	return brokers
}

// DeleteTopics deletes every topic whose name starts with prefix.
func DeleteTopics(t testing.TB, brokers []string, prefix string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Errorf("kafka cleanup client: %v", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kafkaclean.DeletePrefixed(ctx, kadm.NewClient(cl), prefix); err != nil {
		t.Logf("kafka cleanup: %v", err)
	}
}

// ReadAll reads topic from the start with its own client (read_committed)
// until at least want records arrived, then a little longer to catch
// extras, and returns them ordered by partition and offset. It fails the
// test if fewer than want arrive within timeout.
func ReadAll(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatalf("kafka reader: %v", err)
	}
	defer cl.Close()

	var recs []*kgo.Record
	deadline := time.Now().Add(timeout)
	extra := time.Time{}
	for {
		now := time.Now()
		if len(recs) >= want && extra.IsZero() {
			extra = now.Add(500 * time.Millisecond)
		}
		if (!extra.IsZero() && now.After(extra)) || now.After(deadline) {
			break
		}
		until := deadline
		if !extra.IsZero() {
			until = extra
		}
		ctx, cancel := context.WithDeadline(context.Background(), until)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Logf("kafka reader: %s[%d]: %v", topic, p, err)
			}
		})
		recs = append(recs, fetches.Records()...)
	}
	if len(recs) < want {
		t.Fatalf("read %d records from %s within %s, want %d", len(recs), topic, timeout, want)
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs
}
