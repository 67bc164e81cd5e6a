package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/testenv"
)

// failoverChat is the chat the failover test runs: sessions that record a
// question and then its answer, turn after turn, each write retried until
// the store acknowledges it, as the answerer retries a batch the store
// failed (docs/reliability.md, "Sessions on Redis Cluster").
type failoverChat struct {
	store *redis.Sessions
	mu    sync.Mutex
	acked map[string][]string // session → message ids the store acknowledged, in order
	// unacked counts writes that failed (unavailable), each retried;
	// victimAcked the writes acknowledged on the victim's sessions, before
	// and after the kill.
	unacked                 atomic.Int64
	victimAcked, afterKill  atomic.Int64
	killed                  atomic.Bool
	firstVictimAckAfterKill atomic.Int64 // unix nanos of the first victim write acknowledged after the kill
}

// write retries op until the store acknowledges it or stop closes; only an
// unavailable store is expected.
func (c *failoverChat) write(t *testing.T, stop <-chan struct{}, sid, messageID string, victim bool, op func() error) bool {
	for {
		err := op()
		if err == nil {
			c.mu.Lock()
			c.acked[sid] = append(c.acked[sid], messageID)
			c.mu.Unlock()
			if victim {
				c.victimAcked.Add(1)
				if c.killed.Load() {
					c.afterKill.Add(1)
					c.firstVictimAckAfterKill.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
			return true
		}
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("session %s, %s: %v, want nil or ErrUnavailable", sid, messageID, err)
			return false
		}
		c.unacked.Add(1)
		select {
		case <-stop:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run chats in session sid until stop closes.
func (c *failoverChat) run(t *testing.T, stop <-chan struct{}, sid string, victim bool) {
	ctx := context.Background()
	if !c.write(t, stop, sid, "open", victim, func() error { _, err := c.store.Open(ctx, sid, "alice"); return err }) {
		return
	}
	for i := 0; ; i++ {
		select { // a user's pause between questions, which keeps a session within MaxTurns
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		q := domain.Turn{Role: domain.RoleUser, MessageID: fmt.Sprintf("q%04d", i), Text: "question", At: time.Now()}
		a := domain.Turn{Role: domain.RoleAssistant, MessageID: fmt.Sprintf("a%04d", i), Text: "answer", At: time.Now()}
		if !c.write(t, stop, sid, q.MessageID, victim, func() error { _, err := c.store.Record(ctx, sid, "alice", q, 4); return err }) {
			return
		}
		if !c.write(t, stop, sid, a.MessageID, victim, func() error { return c.store.Append(ctx, sid, a) }) {
			return
		}
	}
}

// TestIntegrationRedisClusterFailover kills -9 a master of the Redis test
// cluster while sessions on it and on the other masters record turns. Just
// before, its replica is cut off (SIGSTOP, and the master drops the link),
// so the master's last writes are on no replica when it dies: the
// replication lag a busy or distant replica has, made certain. The replica
// then takes over after the node timeout, and the killed node comes back
// as its replica, empty, and resyncs.
//
// With each write waiting for the replica (KCHAT_REDIS_WAIT_REPLICAS=auto,
// 1 on a cluster), every turn the store acknowledged is then in its
// session, once, in order: the writes the master alone had were never
// acknowledged, and their retries went to the new master. The control runs
// the same crash without the wait (0): turns acknowledged by the master
// alone are lost, which is what the wait guards against.
func TestIntegrationRedisClusterFailover(t *testing.T) {
	nodes := testenv.RedisCluster(t)
	script := testenv.ServicesScript(t)
	t.Run("writes wait for the replica: no acknowledged turn is lost", func(t *testing.T) {
		r := runFailover(t, nodes, script, "auto")
		if len(r.lost) > 0 {
			t.Errorf("%d acknowledged turns lost: %v", len(r.lost), r.lost[:min(len(r.lost), 10)])
		}
	})
	t.Run("control: without the wait the crash loses acknowledged turns", func(t *testing.T) {
		r := runFailover(t, nodes, script, "0")
		t.Logf("%d of the turns acknowledged were lost", len(r.lost))
		if len(r.lost) == 0 {
			t.Error("the crash lost no turn the master alone acknowledged: the scenario does not reach what the wait guards against")
		}
	})
}

// failoverRun is what one run of the failover scenario saw.
type failoverRun struct {
	lost []string // acknowledged turns missing afterwards, as session/message id
}

// runFailover runs the scenario with KCHAT_REDIS_WAIT_REPLICAS=wait.
func runFailover(t *testing.T, nodes []string, script, wait string) failoverRun {
	cfg := redis.DefaultConfig()
	cfg.ClusterNodes, cfg.TTL, cfg.MaxTurns, cfg.KeyPrefix = strings.Join(nodes, ","), time.Hour, 10000, testenv.Prefix("kchat-failover")
	cfg.WaitReplicas = wait
	store, err := redis.NewSessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	admin := clusterAdmin(t, nodes, cfg.KeyPrefix)
	ctx := context.Background()

	// The victim is the master of slot 0; the cluster must be whole.
	requireWhole(t, ctx, admin)
	shard, err := shardOf(ctx, admin, 0)
	if err != nil {
		t.Fatal(err)
	}
	victimAddr, replicaAddr, victimRanges := shard.master, shard.replica, shard.ranges
	victim, err := testenv.RedisNodeOfPort(victimAddr)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := testenv.RedisNodeOfPort(replicaAddr)
	if err != nil {
		t.Fatal(err)
	}
	onVictim := func(sid string) bool {
		s := slot(cfg.KeyPrefix + "session:{" + sid + "}")
		for _, r := range victimRanges {
			if s >= r[0] && s <= r[1] {
				return true
			}
		}
		return false
	}
	// 12 sessions on the victim, 6 on the other masters.
	var victims, others []string
	for i := 0; len(victims) < 12 || len(others) < 6; i++ {
		sid := fmt.Sprintf("failover-%d", i)
		switch {
		case onVictim(sid) && len(victims) < 12:
			victims = append(victims, sid)
		case !onVictim(sid) && len(others) < 6:
			others = append(others, sid)
		}
	}

	chat := &failoverChat{store: store, acked: map[string][]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, sid := range victims {
		wg.Go(func() { chat.run(t, stop, sid, true) })
	}
	for _, sid := range others {
		wg.Go(func() { chat.run(t, stop, sid, false) })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	time.Sleep(time.Second)
	before := chat.victimAcked.Load()
	if before == 0 {
		t.Fatalf("no write acknowledged on the victim %s in the first second", victimAddr)
	}
	// Cut the replica off: stopped, it cannot reconnect; the master drops
	// its link, so what the master writes from now on reaches no replica.
	node(t, script, testenv.PauseRedisNode, replica)
	victimClient := goredis.NewClient(&goredis.Options{Addr: victimAddr})
	defer func() { _ = victimClient.Close() }()
	if err := victimClient.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		node(t, script, testenv.ResumeRedisNode, replica)
		t.Fatalf("drop the replica's link: %v", err)
	}
	cut := chat.victimAcked.Load()
	time.Sleep(300 * time.Millisecond)
	node(t, script, testenv.KillRedisNode, victim)
	killedAt := time.Now()
	chat.killed.Store(true)
	duringCut := chat.victimAcked.Load() - cut
	node(t, script, testenv.ResumeRedisNode, replica)
	t.Logf("killed master %s (node %d) after %d writes acknowledged on it, %d of them while its replica %s was cut off",
		victimAddr, victim, chat.victimAcked.Load(), duringCut, replicaAddr)

	// The replica takes over after the node timeout (2 s) and an election.
	deadline := time.Now().Add(60 * time.Second)
	for {
		now, err := shardOf(ctx, admin, 0)
		if err == nil && now.master != "" && now.master != victimAddr {
			t.Logf("replica %s took slots %v over %s after the kill", now.master, now.ranges, time.Since(killedAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica took the killed master's slots over within a minute (%+v, %v)", now, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Start it again (the script refuses while its slots are still its own:
	// the node would come back an empty master); it becomes the new
	// master's replica, so that writes there can be confirmed again.
	for {
		err := testenv.RunRedisNode(ctx, script, testenv.StartRedisNode, victim)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "no replica has taken its slots over yet") || time.Now().After(deadline) {
			t.Fatalf("start the killed node again: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the killed node rejoined as a replica %s after the kill", time.Since(killedAt).Round(time.Millisecond))

	// Chat on until the victim's sessions have taken writes again, and a
	// second more.
	for chat.afterKill.Load() < int64(len(victims)) {
		if time.Now().After(deadline) {
			t.Fatalf("the victim's sessions took %d writes in the minute after the kill", chat.afterKill.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	back := time.Unix(0, chat.firstVictimAckAfterKill.Load())
	t.Logf("first write acknowledged on the victim's slots %s after the kill; %d writes failed and were retried; %d acknowledged on the victim's sessions",
		back.Sub(killedAt).Round(time.Millisecond), chat.unacked.Load(), chat.victimAcked.Load())
	return failoverRun{lost: chat.check(t, ctx, cfg.MaxTurns, onVictim)}
}

// node runs a node command of the Redis test cluster, failing the test if
// it fails.
func node(t *testing.T, script string, command testenv.RedisNodeCommand, n int) {
	t.Helper()
	if err := testenv.RunRedisNode(context.Background(), script, command, n); err != nil {
		t.Fatal(err)
	}
}

// check returns the acknowledged turns that are not in their sessions, and
// fails t when a session holds a turn twice, out of order, or more than the
// one write in flight when the chat stopped beyond those acknowledged.
func (c *failoverChat) check(t *testing.T, ctx context.Context, maxTurns int, onVictim func(string) bool) []string {
	var lost []string
	for sid, ids := range c.acked {
		if owner, err := c.store.Owner(ctx, sid); err != nil || owner != "alice" {
			t.Errorf("session %s (on the victim: %v): owner %q, %v; want alice", sid, onVictim(sid), owner, err)
			continue
		}
		turns, err := c.store.Recent(ctx, sid, maxTurns)
		if err != nil {
			t.Fatalf("recent %s: %v", sid, err)
		}
		at := map[string]int{}
		for i, tr := range turns {
			at[tr.MessageID] = i
		}
		if len(at) != len(turns) {
			t.Errorf("session %s: %d turns, %d distinct", sid, len(turns), len(at))
		}
		want := ids[1:] // "open" is no turn
		prev := -1
		for _, id := range want {
			i, ok := at[id]
			if !ok {
				lost = append(lost, sid+"/"+id)
				continue
			}
			if i < prev {
				t.Errorf("session %s: acknowledged turn %s at %d, before the one acknowledged earlier (%d)", sid, id, i, prev)
			}
			prev = i
		}
		// Each turn is retried until acknowledged, so the session holds no
		// other turn but the one in flight when the chat stopped.
		if len(turns) > len(want)+1 {
			t.Errorf("session %s: %d turns for %d acknowledged", sid, len(turns), len(want))
		}
	}
	return lost
}
