package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestIntegrationClusterShape: three brokers, each configured as
// docs/reliability.md ("The test cluster") says, and a topic created without
// a replication factor lands on all three, all in sync, with min ISR 2.
func TestIntegrationClusterShape(t *testing.T) {
	brokers := testenv.ClusterBrokers(t)
	prefix := testenv.Prefix("it-cluster")
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	adm := admin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	listed, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := listed.NodeIDs()
	slices.Sort(ids)
	if !slices.Equal(ids, []int32{1, 2, 3}) {
		t.Fatalf("brokers %v, want [1 2 3]", ids)
	}

	want := map[string]string{
		"default.replication.factor":                                  "3",
		"min.insync.replicas":                                         "2",
		"unclean.leader.election.enable":                              "false",
		"offsets.topic.replication.factor":                            "3",
		"transaction.state.log.replication.factor":                    "3",
		"transaction.state.log.min.isr":                               "2",
		"broker.heartbeat.interval.ms":                                "500",
		"broker.session.timeout.ms":                                   "2000",
		"controller.quorum.fetch.timeout.ms":                          "1000",
		"controller.quorum.election.timeout.ms":                       "500",
		"auto.leader.rebalance.enable":                                "false",
		"group.min.session.timeout.ms":                                "1000",
		"group.coordinator.append.linger.ms":                          "0",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
	}
	configs, err := adm.DescribeBrokerConfigs(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range configs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("broker %s: %s = %q, want %q", rc.Name, k, got[k], v)
			}
		}
	}

	topic := prefix + "default"
	if _, err := adm.CreateTopic(ctx, 3, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var ps []kadm.PartitionDetail
	waitFor(t, 30*time.Second, topic+" with a leader for each partition", func() bool {
		ps = partitions(t, adm, topic)
		return len(ps) == 3 && !slices.ContainsFunc(ps, func(p kadm.PartitionDetail) bool { return p.Leader < 0 })
	})
	for _, p := range ps {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Errorf("partition %d: replicas %v, ISR %v; want three of each", p.Partition, p.Replicas, p.ISR)
		}
	}
	tc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range c.Configs {
		if cfg.Key == "min.insync.replicas" && cfg.MaybeValue() != "2" {
			t.Errorf("topic %s: min.insync.replicas = %q, want 2", topic, cfg.MaybeValue())
		}
	}
}

// TestIntegrationClusterLeaderKill kills, with SIGKILL, the broker that
// leads a partition and is also the active controller (the slowest case: a
// new controller must be elected before it can fence the dead broker) while
// an acks=all producer has records in flight. Every record is acknowledged,
// once, in order; a partition left with one in-sync replica refuses writes
// (min.insync.replicas=2); start-broker brings the node back into both ISRs.
func TestIntegrationClusterLeaderKill(t *testing.T) {
	brokers := testenv.ClusterBrokers(t)
	script := testenv.ServicesScript(t)
	prefix := testenv.Prefix("it-cluster")
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	cl := client(t, brokers)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	victim := activeController(ctx, t, cl)
	var others []int32
	for _, id := range []int32{1, 2, 3} {
		if id != victim {
			others = append(others, id)
		}
	}
	// Whatever happens below, leave the cluster whole for the next test.
	t.Cleanup(func() {
		if err := testenv.RunBroker(context.Background(), script, testenv.StartBroker, victim); err != nil {
			t.Errorf("restoring node %d: %v", victim, err)
		}
	})
	acked, narrow := prefix+"acked", prefix+"narrow"
	createAssigned(ctx, t, cl, acked, victim, others[0], others[1])
	createAssigned(ctx, t, cl, narrow, victim, others[0])

	const n, killAt = 5000, 1000
	prod := client(t, brokers, kgo.DefaultProduceTopic(acked), kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.MaxBufferedRecords(100))
	var acks, failed, maxGap atomic.Int64
	var firstErr atomic.Value
	prev := time.Now()
	killNow := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range n {
			// Promises of one partition run one at a time, in order.
			prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("record %d: %w", i, err))
					return
				}
				now := time.Now()
				if gap := now.Sub(prev); gap > time.Duration(maxGap.Load()) {
					maxGap.Store(int64(gap))
				}
				prev = now
				if acks.Add(1) == killAt {
					close(killNow)
				}
			})
		}
		_ = prod.Flush(ctx)
	}()
	defer func() { cancel(); <-produced }() // no promise outlives the test

	select {
	case <-killNow:
	case <-produced:
		t.Fatalf("the producer stopped at %d acknowledgements (%d failed: %v) before the kill", acks.Load(), failed.Load(), firstErr.Load())
	}
	testenv.Broker(t, testenv.KillBroker, victim)
	killed := time.Now()
	atKill := acks.Load()
	if atKill >= n {
		t.Fatalf("all %d records were acknowledged before the kill took effect: no record crossed the failover", n)
	}
	// Asked of a live broker: the client's own metadata may still name the dead one.
	moved := waitFor(t, time.Minute, "a new leader for the killed broker's partitions", func() bool {
		p, q := partitionOn(t, cl, others[0], acked), partitionOn(t, cl, others[0], narrow)
		return p.Leader != victim && !slices.Contains(p.ISR, victim) && q.Leader == others[0] && slices.Equal(q.ISR, others[:1])
	}).Sub(killed)
	<-produced
	if failed.Load() > 0 || acks.Load() != n {
		t.Fatalf("%d of %d records acknowledged, %d failed (first: %v); want every one acknowledged", acks.Load(), n, failed.Load(), firstErr.Load())
	}
	values := readToEnd(ctx, t, brokers, adm, acked)
	if len(values) != n {
		t.Errorf("the partition holds %d records, want %d", len(values), n)
	}
	for i, v := range values {
		if v != strconv.Itoa(i) {
			t.Fatalf("record at offset %d is %q, want %d: a record is missing, duplicated or out of order", i, v, i)
		}
	}

	// One in-sync replica is below min.insync.replicas: acks=all is refused.
	strict := client(t, brokers, kgo.DefaultProduceTopic(narrow), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	err := strict.ProduceSync(ctx, &kgo.Record{Value: []byte("one copy")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Errorf("acks=all with one in-sync replica of two: %v, want NOT_ENOUGH_REPLICAS", err)
	}

	start := time.Now()
	testenv.Broker(t, testenv.StartBroker, victim)
	restarted := time.Since(start)
	rejoined := waitFor(t, time.Minute, "the restarted broker back in both ISRs", func() bool {
		return len(partitionOn(t, cl, others[0], acked).ISR) == 3 && len(partitionOn(t, cl, others[0], narrow).ISR) == 2
	}).Sub(start)
	if err := strict.ProduceSync(ctx, &kgo.Record{Value: []byte("two copies")}).FirstErr(); err != nil {
		t.Errorf("acks=all with both replicas back in sync: %v", err)
	}
	t.Logf("killed node %d (leader and active controller) at ack %d of %d; leader moved and ISR shrank %s after the kill; longest wait between two acks %s; start-broker took %s, back in the ISRs %s after it began",
		victim, atKill, n, moved.Round(time.Millisecond), time.Duration(maxGap.Load()).Round(time.Millisecond),
		restarted.Round(time.Millisecond), rejoined.Round(time.Millisecond))
}

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(client(t, brokers))
}

// activeController asks the quorum which node leads it.
func activeController(ctx context.Context, t *testing.T, cl *kgo.Client) int32 {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	topic := kmsg.NewDescribeQuorumRequestTopic()
	topic.Topic = "__cluster_metadata"
	topic.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeQuorum: unexpected response %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil || p.LeaderID < 1 {
		t.Fatalf("DescribeQuorum: leader %d, %v", p.LeaderID, err)
	}
	return p.LeaderID
}

// createAssigned creates a one-partition topic on replicas, the first of
// which leads it.
func createAssigned(ctx context.Context, t *testing.T, cl *kgo.Client, name string, replicas ...int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic = name
	topic.NumPartitions, topic.ReplicationFactor = -1, -1
	assignment := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	assignment.Replicas = replicas
	topic.ReplicaAssignment = append(topic.ReplicaAssignment, assignment)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s on %v: %v", name, replicas, err)
	}
	waitFor(t, 30*time.Second, name+" led by its first replica", func() bool {
		return partitionOn(t, cl, replicas[0], name).Leader == replicas[0]
	})
}

// partitions returns topic's partitions as a broker sees them now (a
// metadata request, not the client's cache), ordered by number.
func partitions(t *testing.T, adm *kadm.Client, topic string) []kadm.PartitionDetail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return []kadm.PartitionDetail{{Leader: -1}}
	}
	return d.Partitions.Sorted()
}

// partitionOn returns partition 0 of topic as broker node sees it now.
func partitionOn(t *testing.T, cl *kgo.Client, node int32, topic string) kmsg.MetadataResponseTopicPartition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		t.Fatalf("metadata from broker %d: %v", node, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
		return kmsg.MetadataResponseTopicPartition{Leader: -1}
	}
	return resp.Topics[0].Partitions[0]
}

// readToEnd reads partition 0 of topic from the start to the end offset
// measured now, and returns the values in offset order.
func readToEnd(ctx context.Context, t *testing.T, brokers []string, adm *kadm.Client, topic string) []string {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Err != nil {
		t.Fatalf("end offset of %s: %v", topic, end.Err)
	}
	cl := client(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()},
	}))
	var values []string
	for next := int64(0); next < end.Offset; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s at offset %d of %d: %v", topic, next, end.Offset, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end.Offset {
				values = append(values, string(r.Value))
			}
			next = r.Offset + 1
		})
	}
	return values
}

// waitFor polls cond until it holds and returns when it first did.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Now()
}
