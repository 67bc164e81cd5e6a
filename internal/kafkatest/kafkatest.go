// Package kafkatest gives tests a Kafka to talk to, an in-process kfake
// cluster or the real broker of make services-up, and an independent reader
// to check what landed in it.
package kafkatest

import (
	"context"
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

const minReadTimeout = 10 * time.Second

// ReadAll reads topic from the start with its own client (read_committed)
// to the end offsets listed when it is called, and returns its records
// ordered by partition and offset (see ReadToEnd). With want > 0 it first
// waits until the topic holds at least want records, then reads to the end
// offsets listed once it does, so extras written before that are seen. It
// fails the test if that does not happen within timeout, at least
// minReadTimeout: with want 0, callers pass a second or two, which the old
// reader never enforced (it returned after 500 ms with whatever it had), and
// a read that is only slow on a loaded machine must not fail.
func ReadAll(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	timeout = max(timeout, minReadTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs, err := ReadToEnd(ctx, brokers, ReadOptions{Committed: true, Want: want}, topic)
	if err != nil {
		t.Fatalf("read %s within %s: %v", topic, timeout, err)
	}
	return recs
}
