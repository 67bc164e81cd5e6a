package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports/porttest"
)

// sentinelConfig is the store's configuration for the Sentinel test
// deployment, with a key prefix of its own.
func sentinelConfig(sentinels []string, master, tag string) redis.Config {
	cfg := redis.DefaultConfig()
	cfg.SentinelAddrs, cfg.SentinelMaster, cfg.KeyPrefix = strings.Join(sentinels, ","), master, testenv.Prefix(tag)
	return cfg
}

// sentinelAdmin is a test's own look at the Sentinel deployment: a
// sentinel client, and a failover client that deletes every key under
// prefix on the master when the test ends.
type sentinelAdmin struct {
	sentinels []*goredis.SentinelClient
	master    string
	client    *goredis.Client
}

func newSentinelAdmin(t *testing.T, sentinels []string, master, prefix string) *sentinelAdmin {
	t.Helper()
	a := &sentinelAdmin{master: master, client: goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})}
	for _, addr := range sentinels {
		a.sentinels = append(a.sentinels, goredis.NewSentinelClient(&goredis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second}))
	}
	t.Cleanup(func() {
		defer func() {
			_ = a.client.Close()
			for _, s := range a.sentinels {
				_ = s.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		iter := a.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := a.client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("clean up %s* on the Sentinel deployment: %v", prefix, err)
				return
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s* on the Sentinel deployment: %v", prefix, err)
		}
	})
	return a
}

// masterAddr is the master's host:port as sentinel i names it.
func (a *sentinelAdmin) masterAddr(ctx context.Context, i int) (string, error) {
	hp, err := a.sentinels[i].GetMasterAddrByName(ctx, a.master).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel answered %q", hp)
	}
	return hp[0] + ":" + hp[1], nil
}

// role is node addr's replication role ("master", "slave"), and for a
// replica whether its link to the master is up.
func role(ctx context.Context, addr string) (string, bool, error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", false, err
	}
	var r string
	up := false
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "role:"); ok {
			r = v
		}
		if line == "master_link_status:up" {
			up = true
		}
	}
	return r, up, nil
}

// requireWholeSentinel returns the master and the replica, failing t
// unless every sentinel names the same master, the node there is a master
// and the one replica the sentinels know is up with its link up.
func requireWholeSentinel(t *testing.T, ctx context.Context, a *sentinelAdmin) (master, replica string) {
	t.Helper()
	for i := range a.sentinels {
		m, err := a.masterAddr(ctx, i)
		if err != nil || (master != "" && m != master) {
			t.Fatalf("sentinel %d names master %q (%v), another %q: the Sentinel deployment is not whole (make redis-sentinel-up)", i, m, err, master)
		}
		master = m
	}
	replicas, err := a.sentinels[0].Replicas(ctx, a.master).Result()
	if err != nil {
		t.Fatalf("sentinel replicas: %v", err)
	}
	for _, r := range replicas {
		if r["flags"] == "slave" {
			replica = r["name"]
		}
	}
	mr, _, err := role(ctx, master)
	rr, up, rerr := role(ctx, replica)
	if replica == "" || mr != "master" || rr != "slave" || !up {
		t.Fatalf("master %s is %q (%v), replica %q is %q, link up %v (%v): the Sentinel deployment is not whole (make redis-sentinel-up)", master, mr, err, replica, rr, up, rerr)
	}
	return master, replica
}

// TestIntegrationRedisSentinelSessionStore runs the session-store contract
// on the master the Sentinel test deployment watches, each write waiting
// for its replica (KCHAT_REDIS_WAIT_REPLICAS=auto is 1 with Sentinel),
// with a short TTL the suite waits out.
func TestIntegrationRedisSentinelSessionStore(t *testing.T) {
	sentinels, master := testenv.RedisSentinel(t)
	requireWholeSentinel(t, context.Background(), newSentinelAdmin(t, sentinels, master, "kchat-test-none:"))
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		cfg := sentinelConfig(sentinels, master, "kchat-test")
		cfg.TTL, cfg.MaxTurns = 1500*time.Millisecond, 250
		if cfg.Replicas() != 1 {
			t.Fatalf("Sentinel waits for %d replicas by default, want 1", cfg.Replicas())
		}
		store, err := redis.NewSessions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		newSentinelAdmin(t, sentinels, master, cfg.KeyPrefix)
		t.Cleanup(func() { _ = store.Close() })
		return porttest.SessionHarness{Store: store, MaxTurns: cfg.MaxTurns, TTL: cfg.TTL}
	})
}

// TestIntegrationRedisSentinelFailover is TestIntegrationRedisClusterFailover
// on the Sentinel deployment: sessions record turns on the master; its
// replica is cut off (the master refuses to replicate), so the master's
// last writes are on no replica; the master is killed -9; the sentinels
// promote the replica (down-after-milliseconds 1000) and the store's
// failover client follows; the killed node comes back as the new master's
// replica, empty, and resyncs.
//
// Waiting for the replica (auto, 1 with Sentinel), every turn the store
// acknowledged is then in its session, once, in order. The control runs
// the same crash without the wait (0) and must lose acknowledged turns.
func TestIntegrationRedisSentinelFailover(t *testing.T) {
	sentinels, master := testenv.RedisSentinel(t)
	script := testenv.ServicesScript(t)
	t.Run("writes wait for the replica: no acknowledged turn is lost", func(t *testing.T) {
		r := runSentinelFailover(t, sentinels, master, script, "auto")
		if len(r.lost) > 0 {
			t.Errorf("%d acknowledged turns lost: %v", len(r.lost), r.lost[:min(len(r.lost), 10)])
		}
	})
	t.Run("control: without the wait the crash loses acknowledged turns", func(t *testing.T) {
		r := runSentinelFailover(t, sentinels, master, script, "0")
		t.Logf("%d of the turns acknowledged were lost", len(r.lost))
		if len(r.lost) == 0 {
			t.Error("the crash lost no turn the master alone acknowledged: the scenario does not reach what the wait guards against")
		}
	})
}

// runSentinelFailover runs the scenario with KCHAT_REDIS_WAIT_REPLICAS=wait.
func runSentinelFailover(t *testing.T, sentinels []string, master, script, wait string) failoverRun {
	cfg := sentinelConfig(sentinels, master, "kchat-failover")
	cfg.TTL, cfg.MaxTurns, cfg.WaitReplicas = time.Hour, 10000, wait
	store, err := redis.NewSessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	admin := newSentinelAdmin(t, sentinels, master, cfg.KeyPrefix)
	ctx := context.Background()

	victimAddr, replicaAddr := requireWholeSentinel(t, ctx, admin)
	victim, err := testenv.SentinelRedisOfPort(victimAddr)
	if err != nil {
		t.Fatal(err)
	}
	all := func(string) bool { return true } // every session is on the one master

	chat := &failoverChat{store: store, acked: map[string][]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const sessions = 12
	for i := range sessions {
		wg.Go(func() { chat.run(t, stop, fmt.Sprintf("failover-%d", i), true) })
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
	if chat.victimAcked.Load() == 0 {
		t.Fatalf("no write acknowledged on the master %s in the first second", victimAddr)
	}
	// Cut the replica off: the master refuses replication commands (ACL)
	// and drops the replica's link, so the replica cannot resync and what
	// the master writes from now on reaches no replica. (The cluster test
	// stops the replica instead; here the sentinels would then see it down
	// and not promote it until their next try, 2 × failover-timeout later.)
	victimClient := goredis.NewClient(&goredis.Options{Addr: victimAddr})
	defer func() { _ = victimClient.Close() }()
	if err := victimClient.Do(ctx, "ACL", "SETUSER", "default", "-psync", "-sync", "-replconf").Err(); err != nil {
		t.Fatalf("refuse replication on the master: %v", err)
	}
	defer func() { // a test that failed before the kill leaves the deployment whole
		if !chat.killed.Load() {
			_ = victimClient.Do(ctx, "ACL", "SETUSER", "default", "+@all").Err()
		}
	}()
	if err := victimClient.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatalf("drop the replica's link: %v", err)
	}
	cut := chat.victimAcked.Load()
	time.Sleep(300 * time.Millisecond)
	node(t, script, testenv.KillSentinelRedis, victim)
	killedAt := time.Now()
	chat.killed.Store(true)
	duringCut := chat.victimAcked.Load() - cut
	t.Logf("killed master %s (node %d) after %d writes acknowledged on it, %d of them while its replica %s was cut off",
		victimAddr, victim, chat.victimAcked.Load(), duringCut, replicaAddr)

	// The sentinels see the master down after down-after-milliseconds,
	// agree (quorum 2), elect a leader, which promotes the replica.
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, merr := admin.masterAddr(ctx, 0)
		r, _, rerr := role(ctx, replicaAddr)
		if merr == nil && rerr == nil && m == replicaAddr && r == "master" {
			t.Logf("the sentinels promoted replica %s %s after the kill", replicaAddr, time.Since(killedAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sentinels promoted no replica within a minute (sentinel 0 names %q, %v; %s is %q, %v)", m, merr, replicaAddr, r, rerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Start the killed node again as the new master's replica (the script
	// refuses while the sentinels still name it), so that writes there can
	// be confirmed again.
	for {
		err := testenv.RunRedisNode(ctx, script, testenv.StartSentinelRedis, victim)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "have not promoted its replica yet") || time.Now().After(deadline) {
			t.Fatalf("start the killed node again: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the killed node was back as a replica in sync %s after the kill", time.Since(killedAt).Round(time.Millisecond))

	// Chat on until the sessions have taken a write each (in number) after
	// the kill, and a second more.
	for chat.afterKill.Load() < sessions {
		if time.Now().After(deadline) {
			t.Fatalf("the sessions took %d writes in the minute after the kill", chat.afterKill.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	back := time.Unix(0, chat.firstVictimAckAfterKill.Load())
	t.Logf("first write acknowledged %s after the kill; %d writes failed and were retried; %d acknowledged in all",
		back.Sub(killedAt).Round(time.Millisecond), chat.unacked.Load(), chat.victimAcked.Load())
	if err := store.Ping(ctx); err != nil {
		t.Errorf("ping after the failover: %v", err)
	}
	return failoverRun{lost: chat.check(t, ctx, cfg.MaxTurns, all)}
}
