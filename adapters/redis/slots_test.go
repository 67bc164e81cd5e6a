package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports/porttest"
)

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's
// key hash.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slot is the cluster slot of key: the CRC16 of its hash tag (the text
// between the first { and the next }, when not empty), else of the key.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16([]byte(key)) % 16384)
}

// TestSlotFunction checks the test's slot function against CLUSTER KEYSLOT
// of Redis 7.0 for the same keys.
func TestSlotFunction(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "123456789": 12739, "foo{}{bar}": 8363, "foo{{bar}}zap": 4015,
		"{user1000}.following": 3443, "kchat:session:}{x7d78}:turns": 3741, "a{b": 13340,
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d (CLUSTER KEYSLOT)", key, got, want)
		}
	}
}

// keyRecorder is a go-redis hook that records the keys of every command a
// client sends.
type keyRecorder struct {
	t    *testing.T
	mu   sync.Mutex
	cmds [][]string // the keys of each command that has any
}

func (r *keyRecorder) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *keyRecorder) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.add(cmd.Args())
		return next(ctx, cmd)
	}
}

func (r *keyRecorder) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			r.add(cmd.Args())
		}
		return next(ctx, cmds)
	}
}

func (r *keyRecorder) add(args []any) {
	str := func(a any) string { return fmt.Sprint(a) }
	var keys []string
	switch name := strings.ToLower(str(args[0])); name {
	case "eval", "evalsha":
		n, err := strconv.Atoi(str(args[2]))
		if err != nil {
			r.t.Errorf("%s with numkeys %v", name, args[2])
			return
		}
		for _, k := range args[3 : 3+n] {
			keys = append(keys, str(k))
		}
	case "del":
		for _, k := range args[1:] {
			keys = append(keys, str(k))
		}
	case "hget":
		keys = []string{str(args[1])}
	case "wait", "ping", "hello", "client", "cluster", "command":
		return // no key
	default:
		r.t.Errorf("the store sent %v: classify its keys in keyRecorder", args)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, keys)
}

// TestKeysOfASessionShareOneSlot runs every call of the store on sessions
// with awkward ids (braces, an id that starts with }, an empty id) and
// checks, from the commands the client sent, that every command's keys
// share one slot and each session's keys are all in one slot: on a Redis
// Cluster no script or DEL is CROSSSLOT. Plain ids keep the layout earlier
// versions wrote, so their sessions are still read after an upgrade.
func TestKeysOfASessionShareOneSlot(t *testing.T) {
	mr := miniredis.RunT(t)
	client := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	rec := &keyRecorder{t: t}
	client.AddHook(rec)
	store, err := redis.NewSessionsWithClient(client, redis.Config{TTL: time.Hour, MaxTurns: 10, KeyPrefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := []string{"s1", "}x", "a}b", "{x}", "a{b", "}", "}{", "{}", "ünïcødé ✓", "", "x7d78", strings.Repeat("l", 256)}
	for _, id := range ids {
		turn := domain.Turn{Role: domain.RoleUser, MessageID: "m1", Text: "hi"}
		if _, err := store.Owner(ctx, id); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("owner of new %q: %v", id, err)
		}
		if _, err := store.Open(ctx, id, "alice"); err != nil {
			t.Fatalf("open %q: %v", id, err)
		}
		if err := store.Append(ctx, id, turn); err != nil {
			t.Fatalf("append %q: %v", id, err)
		}
		turn.MessageID = "m2"
		if _, err := store.Record(ctx, id, "alice", turn, 5); err != nil {
			t.Fatalf("record %q: %v", id, err)
		}
		if got, err := store.Recent(ctx, id, 5); err != nil || len(got) != 2 {
			t.Fatalf("recent %q: %v, %v", id, got, err)
		}
		if _, err := store.Turn(ctx, id, "m1"); err != nil {
			t.Fatalf("turn %q: %v", id, err)
		}
	}
	// Every id is a session of its own: "}x" (hex 7d78) is not "x7d78".
	for _, id := range ids {
		if owner, err := store.Owner(ctx, id); err != nil || owner != "alice" {
			t.Fatalf("owner of %q: %q, %v", id, owner, err)
		}
		if got, err := store.Recent(ctx, id, 10); err != nil || len(got) != 2 {
			t.Fatalf("session %q has %d turns, %v; want its own 2", id, len(got), err)
		}
	}
	for _, id := range ids {
		if err := store.Delete(ctx, id); err != nil {
			t.Fatalf("delete %q: %v", id, err)
		}
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Fatalf("keys left after deleting every session: %q", keys)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	slotOfBase := map[string]int{} // a session's hash key → its slot
	for _, keys := range rec.cmds {
		s := slot(keys[0])
		for _, k := range keys[1:] {
			if slot(k) != s {
				t.Errorf("one command touches %q (slot %d) and %q (slot %d): CROSSSLOT on a cluster", keys[0], s, k, slot(k))
			}
		}
		base := strings.TrimSuffix(strings.TrimSuffix(keys[0], ":turns"), ":ids")
		if prev, ok := slotOfBase[base]; ok && prev != s {
			t.Errorf("session %q has keys in slots %d and %d", base, prev, s)
		}
		slotOfBase[base] = s
	}
	if len(slotOfBase) != len(ids) {
		t.Errorf("%d sessions used %d distinct key sets: %v", len(ids), len(slotOfBase), slotOfBase)
	}
	for _, base := range []string{"p:session:{s1}", "p:session:{a}b}", "p:session:}{x7d78}", "p:session:}{x}"} {
		if _, ok := slotOfBase[base]; !ok {
			t.Errorf("no session keys %q; the layout changed (sessions stored before would not be found): %v", base, slotOfBase)
		}
	}
}

// TestSessionStoreMiniredisClusterClient runs the contract through go-redis's
// ClusterClient (miniredis answers CLUSTER SLOTS as a one-node cluster),
// the client KCHAT_REDIS_CLUSTER_NODES makes, without waiting for
// replicas (miniredis has none).
func TestSessionStoreMiniredisClusterClient(t *testing.T) {
	porttest.RunSessionStore(t, func(t *testing.T) porttest.SessionHarness {
		mr := miniredis.RunT(t)
		cfg := redis.DefaultConfig()
		cfg.ClusterNodes, cfg.WaitReplicas, cfg.TTL, cfg.MaxTurns = mr.Addr(), "0", time.Hour, 250
		store, err := redis.NewSessions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		return porttest.SessionHarness{Store: store, MaxTurns: cfg.MaxTurns, TTL: cfg.TTL, Advance: mr.FastForward}
	})
}

// TestWriteNotOnAReplicaIsUnavailable: miniredis has no replica (WAIT
// answers 0), so a store that waits for one reports every write that
// changed a session as unavailable, naming the setting, through a plain
// client and a cluster client alike; what writes nothing (a forbidden
// open, an append to a missing session) and reads are answered as usual.
func TestWriteNotOnAReplicaIsUnavailable(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.HSet("kchat:session:{bob-s}", "owner", "bob")
	for name, cfg := range map[string]redis.Config{
		"one node": {URL: "redis://" + mr.Addr(), WaitReplicas: "1"},
		"cluster":  {ClusterNodes: mr.Addr(), WaitReplicas: "auto"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.WaitTimeout, cfg.TTL, cfg.MaxTurns, cfg.KeyPrefix = 50*time.Millisecond, time.Hour, 10, "kchat:"
			store, err := redis.NewSessions(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			ctx := context.Background()
			turn := domain.Turn{Role: domain.RoleUser, MessageID: "m1", Text: "hi"}
			writes := map[string]func() error{
				"open":   func() error { _, err := store.Open(ctx, "s-"+name, "alice"); return err },
				"append": func() error { return store.Append(ctx, "s-"+name, turn) },
				"record": func() error { _, err := store.Record(ctx, "s-"+name, "alice", turn, 5); return err },
				"delete": func() error { return store.Delete(ctx, "gone-"+name) },
			}
			for _, op := range []string{"open", "append", "record", "delete"} {
				err := writes[op]()
				if !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "KCHAT_REDIS_WAIT_REPLICAS") {
					t.Errorf("%s with no replica: %v, want ErrUnavailable naming KCHAT_REDIS_WAIT_REPLICAS", op, err)
				}
			}
			// The master has the writes (a retry finds them: writes are idempotent).
			if got, err := store.Recent(ctx, "s-"+name, 5); err != nil || len(got) != 1 {
				t.Errorf("recent: %v, %v; want the one turn the master has", got, err)
			}
			if _, err := store.Open(ctx, "bob-s", "alice"); !errors.Is(err, domain.ErrForbidden) {
				t.Errorf("open of bob's session: %v, want ErrForbidden (nothing written, nothing waited for)", err)
			}
			if err := store.Append(ctx, "missing-"+name, turn); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("append to a missing session: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestWaitingStoreUnavailableFailsFast: with writes waiting for a replica,
// a Redis that is gone still answers every call with ErrUnavailable within
// the write's bound (the op timeout plus the wait).
func TestWaitingStoreUnavailableFailsFast(t *testing.T) {
	mr := miniredis.RunT(t)
	addr := mr.Addr()
	mr.Close()
	for name, cfg := range map[string]redis.Config{
		"one node": {URL: "redis://" + addr},
		"cluster":  {ClusterNodes: addr},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.WaitReplicas, cfg.WaitTimeout, cfg.TTL, cfg.MaxTurns = "1", 500*time.Millisecond, time.Hour, 10
			store, err := redis.NewSessions(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			ctx := context.Background()
			start := time.Now()
			_, err = store.Record(ctx, "s1", "alice", domain.Turn{MessageID: "m1"}, 5)
			if took := time.Since(start); took > 3500*time.Millisecond {
				t.Errorf("record took %s with Redis down, want < 3.5s", took)
			}
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("record with Redis down: %v, want ErrUnavailable", err)
			}
		})
	}
}

// TestConcurrentWaitingWrites: writes that wait for replicas, each on a
// connection of its own, run at once without a data race (go test -race;
// see noMaintNotifications) and each gets its answer.
func TestConcurrentWaitingWrites(t *testing.T) {
	mr := miniredis.RunT(t)
	store, err := redis.NewSessions(redis.Config{URL: "redis://" + mr.Addr(), WaitReplicas: "1", WaitTimeout: 10 * time.Millisecond, TTL: time.Hour, MaxTurns: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := store.Open(context.Background(), fmt.Sprintf("s%d", i), "alice"); !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("open s%d with no replica: %v, want ErrUnavailable", i, err)
			}
		})
	}
	wg.Wait()
}
