package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/internal/history"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// chaos is a producer fault scenario's view of the 3-broker test cluster:
// its topics (under prefix, deleted when the test ends) and an admin client.
type chaos struct {
	brokers []string
	prefix  string
	cl      *kgo.Client
	adm     *kadm.Client
}

// newChaos finds the cluster, checks it is whole and registers the
// scenario's cleanups: topics are deleted last, after every node the test
// broke has been restored (restore).
func newChaos(t *testing.T, tag string) *chaos {
	t.Helper()
	brokers := testenv.ClusterBrokers(t)
	testenv.ServicesScript(t) // the scenarios need it to kill and restart nodes
	c := &chaos{brokers: brokers, prefix: testenv.Prefix(tag)}
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, c.prefix) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c.cl, c.adm = cl, kadm.NewClient(cl)
	return c
}

// restore restarts (or resumes) node when the test ends, however it ends,
// so the next scenario finds the cluster whole.
func (c *chaos) restore(t *testing.T, node int32) {
	script := testenv.ServicesScript(t)
	t.Cleanup(func() {
		if err := testenv.RunBroker(context.Background(), script, testenv.StartBroker, node); err != nil {
			t.Errorf("restoring node %d: %v", node, err)
		}
	})
}

// startProducer runs the producer binary on the cluster with its topics
// replicated three times, and waits until every partition of the query
// topic is led and all three replicas are in sync: a scenario starts from
// a whole cluster.
func (c *chaos) startProducer(t *testing.T) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/producer"), "KCHAT_PRODUCER_ADDR",
		"KCHAT_KAFKA_BROKERS="+strings.Join(c.brokers, ","), "KCHAT_TOPIC_PREFIX="+c.prefix,
		"KCHAT_TOPIC_REPLICATION_FACTOR=3",
		// Nothing of the run may age out before it is read back.
		"KCHAT_TOPIC_RETENTION=1h",
		"KCHAT_ADMIN_ADDR=127.0.0.1:0")
	t.Cleanup(func() {
		if t.Failed() && p.Logs() != "" {
			lines := strings.Split(strings.TrimSpace(p.Logs()), "\n")
			t.Logf("the producer's last %d log lines:\n%s", min(len(lines), 30), strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		ps := c.partitions(t)
		if len(ps) > 0 && !slices.ContainsFunc(ps, func(p kadm.PartitionDetail) bool { return p.Leader < 0 || len(p.ISR) != 3 }) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not whole: %s has partitions %+v; run make cluster-status", c.topic(), ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topic is the topic the load writes (messages of type query).
func (c *chaos) topic() string { return c.prefix + "query" }

// partitions describes the query topic as a broker sees it now (a metadata
// request, not the client's cache), ordered by number.
func (c *chaos) partitions(t *testing.T) []kadm.PartitionDetail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := c.adm.ListTopics(ctx, c.topic())
	if err != nil {
		t.Fatalf("metadata of %s: %v", c.topic(), err)
	}
	d, ok := td[c.topic()]
	if !ok || d.Err != nil {
		return nil
	}
	return d.Partitions.Sorted()
}

// victim picks the node to break: the active controller when it leads a
// partition of the query topic (the slowest failover: the other two must
// elect a controller before it can fence the dead broker), else the leader
// of partition. It returns the node, the partitions it leads and whether it
// is the controller.
func (c *chaos) victim(t *testing.T, partition int32) (node int32, led map[int32]bool, controller bool) {
	t.Helper()
	ps := c.partitions(t)
	leads := func(n int32) map[int32]bool {
		m := map[int32]bool{}
		for _, p := range ps {
			if p.Leader == n {
				m[p.Partition] = true
			}
		}
		return m
	}
	if ctrl := c.activeController(t); len(leads(ctrl)) > 0 {
		return ctrl, leads(ctrl), true
	}
	for _, p := range ps {
		if p.Partition == partition {
			return p.Leader, leads(p.Leader), false
		}
	}
	t.Fatalf("%s has no partition %d: %+v", c.topic(), partition, ps)
	return 0, nil, false
}

// activeController asks the KRaft quorum which node leads it.
func (c *chaos) activeController(t *testing.T) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	topic := kmsg.NewDescribeQuorumRequestTopic()
	topic.Topic = "__cluster_metadata"
	topic.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		t.Fatalf("DescribeQuorum: %v", err)
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

// check reads every topic of the scenario to its end offsets, measured
// now, and judges the history against them.
func (c *chaos) check(t *testing.T, h *history.History) history.Report {
	t.Helper()
	recs := history.Reader{Brokers: c.brokers}.Read(t, c.prefix+"query", c.prefix+"prompt", c.prefix+"answer")
	rep := history.Check(h, recs)
	t.Log(rep.String())
	return rep
}

// otherNodes returns the nodes other than these, in order.
func otherNodes(these ...int32) []int32 {
	var out []int32
	for _, n := range []int32{1, 2, 3} {
		if !slices.Contains(these, n) {
			out = append(out, n)
		}
	}
	return out
}
