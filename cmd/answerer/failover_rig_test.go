package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
)

// failoverRig measures how long a kill -9 of an answerer delays answers
// (docs/reliability.md, "Answerer failover"); fault scenarios reuse it:
// newFailoverRig, start each instance, serving, then measureFailover.

// rigConfig configures a failoverRig.
type rigConfig struct {
	Brokers           []string
	RedisURL          string
	Prefix            string // topics, groups and Redis keys
	ReplicationFactor int    // of the topics; 0 means 1
	// The answerers' KCHAT_ANSWERER_SESSION_TIMEOUT and
	// KCHAT_ANSWERER_TRANSACTION_TIMEOUT.
	SessionTimeout, TransactionTimeout time.Duration
	// Env are more variables of every answerer (e.g. its generator).
	Env []string
}

// failoverRig runs answerers as processes of their own (killable with -9)
// on one topic prefix and group, asks questions through Kafka and times
// their answers as a gateway sees them: read at read_committed.
type failoverRig struct {
	t       *testing.T
	cfg     rigConfig
	bin     string
	group   string
	pub     *kafka.Publisher
	adm     *kadm.Client
	answers *answerClock
	procs   map[string]*answererProc

	mu       sync.Mutex
	asked    []string // every question's id
	sessions int
}

// failoverResult is what one measured kill -9 showed.
type failoverResult struct {
	// Delay is the time from the kill to the last answer of the probes: one
	// question per partition, asked right after the kill.
	Delay time.Duration
	// Attempts is how many times the victim was paused to find it inside a
	// transaction.
	Attempts int
}

func newFailoverRig(t *testing.T, cfg rigConfig) *failoverRig {
	t.Helper()
	cfg.ReplicationFactor = max(cfg.ReplicationFactor, 1)
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix, kcfg.ReplicationFactor = cfg.Brokers, cfg.Prefix, cfg.ReplicationFactor
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(kcfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, kcfg, log, append(kafka.PipelineTopics(kcfg), kafka.DeadLetterTopics(kcfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := &failoverRig{
		t: t, cfg: cfg, bin: proctest.Build(t, "github.com/kchat/kchat/cmd/answerer"), group: cfg.Prefix + "answerer",
		pub: kafka.NewPublisher(cl, kcfg), adm: kadm.NewClient(cl), procs: map[string]*answererProc{},
	}
	r.answers = startAnswerClock(t, cfg.Brokers, cfg.Prefix+"answer")
	t.Cleanup(func() {
		if t.Failed() {
			for instance, p := range r.procs {
				t.Logf("answerer %s logged:\n%s", instance, p.logs())
			}
		}
	})
	return r
}

// start starts an answerer under instance and returns at once; serving
// says when it answers.
func (r *failoverRig) start(instance string) {
	r.t.Helper()
	env := []string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(r.cfg.Brokers, ","),
		fmt.Sprintf("KCHAT_TOPIC_REPLICATION_FACTOR=%d", r.cfg.ReplicationFactor),
		"KCHAT_TOPIC_PREFIX=" + r.cfg.Prefix,
		"KCHAT_REDIS_URL=" + r.cfg.RedisURL,
		"KCHAT_REDIS_PREFIX=" + r.cfg.Prefix,
		"KCHAT_ANSWERER_GROUP=" + r.group,
		"KCHAT_ANSWERER_INSTANCE=" + instance,
		"KCHAT_ANSWERER_SESSION_TIMEOUT=" + r.cfg.SessionTimeout.String(),
		"KCHAT_ANSWERER_TRANSACTION_TIMEOUT=" + r.cfg.TransactionTimeout.String(),
		"KCHAT_ANSWER_KEY=" + testAnswerKey,
	}
	r.procs[instance] = startAnswerer(r.t, r.bin, append(env, r.cfg.Env...)...)
}

// serving waits until both stage groups are stable with exactly
// instances as members, and a question on every partition is answered.
func (r *failoverRig) serving(instances ...string) {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !r.membersAre(instances) {
		if time.Now().After(deadline) {
			r.t.Fatalf("the stage groups never settled on members %v", instances)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.answers.wait(r.t, r.askEveryPartition(), 60*time.Second)
}

func (r *failoverRig) membersAre(instances []string) bool {
	for _, stage := range []string{"retrieve", "generate"} {
		groups, err := r.adm.DescribeGroups(context.Background(), r.group+"-"+stage)
		if err != nil {
			return false
		}
		g := groups[r.group+"-"+stage]
		if g.Err != nil || g.State != "Stable" || len(g.Members) != len(instances) {
			return false
		}
		for _, m := range g.Members {
			if m.InstanceID == nil || !slices.Contains(instances, *m.InstanceID) {
				return false
			}
		}
	}
	return true
}

// ask publishes a question in a session of its own and returns its id and
// partition.
func (r *failoverRig) ask() (string, int32) {
	r.t.Helper()
	r.mu.Lock()
	r.sessions++
	session := fmt.Sprintf("s%d", r.sessions)
	r.mu.Unlock()
	q := domain.Message{
		MessageID: domain.NewMessageID(), SessionID: session, UserID: "u", Type: domain.TypeQuery,
		Text: "How do I acknowledge a message in manual mode?", CreatedAt: time.Now(),
	}
	pos, err := r.pub.Publish(context.Background(), q)
	if err != nil {
		r.t.Errorf("publish: %v", err)
		return "", -1
	}
	r.mu.Lock()
	r.asked = append(r.asked, q.MessageID)
	r.mu.Unlock()
	return q.MessageID, pos.Partition
}

// askEveryPartition asks questions until every partition of the query
// topic (and so of prompt and answer: the key is the session) has one.
func (r *failoverRig) askEveryPartition() []string {
	r.t.Helper()
	var ids []string
	covered := map[int32]bool{}
	for len(covered) < kafka.DefaultConfig().Partitions && len(ids) < 1000 {
		id, p := r.ask()
		ids = append(ids, id)
		covered[p] = true
	}
	return ids
}

// load asks a question every few milliseconds until stop is called.
func (r *failoverRig) load() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			r.ask()
			time.Sleep(5 * time.Millisecond)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// killInTransaction kills instance with -9 at the worst moment: while a
// transaction of its stages is open at the coordinator with its input
// offsets in it (so the offsets of the partitions it consumed are pending,
// and its outputs are held back from read_committed readers). It pauses the
// process (SIGSTOP), looks, and kills it if one is open, or lets it go on
// until the next answer and looks again. It returns when the kill
// happened and how many looks it took.
func (r *failoverRig) killInTransaction(instance string) (time.Time, int) {
	r.t.Helper()
	p := r.procs[instance]
	ids := []string{r.group + "-retrieve-" + instance, r.group + "-generate-" + instance}
	for attempt := 1; attempt <= 200; attempt++ {
		p.signal(syscall.SIGSTOP)
		txns, err := r.adm.DescribeTransactions(context.Background(), ids...)
		open := err == nil && slices.ContainsFunc(txns.Sorted(), func(d kadm.DescribedTransaction) bool {
			_, offsets := d.Topics["__consumer_offsets"]
			return d.State == "Ongoing" && offsets
		})
		if open {
			at := time.Now()
			p.kill()
			return at, attempt
		}
		p.signal(syscall.SIGCONT)
		r.answers.next(r.t, 10*time.Second)
	}
	r.t.Fatalf("%s was never caught inside a transaction in 200 looks", instance)
	return time.Time{}, 0
}

// measureFailover runs a load, kills victim with -9 inside a transaction,
// asks one question per partition right after the kill and, when restart
// is set, restarts victim under the same instance id at once. It returns
// the time from the kill to the last of their answers, after checking
// that every question asked so far has exactly one answer.
func (r *failoverRig) measureFailover(victim string, restart bool) failoverResult {
	r.t.Helper()
	stop := r.load()
	r.answers.next(r.t, 30*time.Second) // the load is being answered
	killed, attempts := r.killInTransaction(victim)
	stop()
	probes := r.askEveryPartition()
	if restart {
		r.start(victim)
	}
	answered := r.answers.wait(r.t, probes, 120*time.Second)
	res := failoverResult{Attempts: attempts}
	for _, at := range answered {
		res.Delay = max(res.Delay, at.Sub(killed))
	}
	r.checkExactlyOnce()
	return res
}

// checkExactlyOnce reads the answer topic to its end (read_committed) and
// checks every question asked has exactly one answer.
func (r *failoverRig) checkExactlyOnce() {
	r.t.Helper()
	r.mu.Lock()
	asked := slices.Clone(r.asked)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := kafkatest.ReadToEnd(ctx, r.cfg.Brokers, kafkatest.ReadOptions{Committed: true, Want: len(asked)}, r.cfg.Prefix+"answer")
	if err != nil {
		r.t.Fatalf("read the answers: %v", err)
	}
	count := map[string]int{}
	for _, rec := range recs {
		m, err := kafka.DecodeValue(rec.Value)
		if err != nil {
			r.t.Fatalf("answer %d@%d: %v", rec.Partition, rec.Offset, err)
		}
		count[m.ReplyTo]++
	}
	for _, id := range asked {
		if count[id] != 1 {
			r.t.Errorf("question %s has %d answers, want 1", id, count[id])
		}
	}
}

// answerClock reads the answer topic at read_committed and notes when
// each question's first answer arrived.
type answerClock struct {
	mu      sync.Mutex
	at      map[string]time.Time // by reply_to
	arrived chan struct{}        // closed and replaced at each answer
}

func startAnswerClock(t *testing.T, brokers []string, topic string) *answerClock {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c := &answerClock{at: map[string]time.Time{}, arrived: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			now := time.Now()
			fetches.EachRecord(func(rec *kgo.Record) {
				m, err := kafka.DecodeValue(rec.Value)
				if err != nil {
					return
				}
				c.mu.Lock()
				if _, seen := c.at[m.ReplyTo]; !seen {
					c.at[m.ReplyTo] = now
				}
				close(c.arrived)
				c.arrived = make(chan struct{})
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return c
}

// next waits for the next answer to arrive.
func (c *answerClock) next(t *testing.T, timeout time.Duration) {
	t.Helper()
	c.mu.Lock()
	arrived := c.arrived
	c.mu.Unlock()
	select {
	case <-arrived:
	case <-time.After(timeout):
		t.Fatalf("no answer within %s", timeout)
	}
}

// wait waits until every question of ids is answered and returns when
// each answer arrived.
func (c *answerClock) wait(t *testing.T, ids []string, timeout time.Duration) map[string]time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		got := map[string]time.Time{}
		for _, id := range ids {
			if at, ok := c.at[id]; ok {
				got[id] = at
			}
		}
		arrived := c.arrived
		c.mu.Unlock()
		if len(got) == len(ids) {
			return got
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("%d of %d questions answered within %s", len(got), len(ids), timeout)
		}
	}
}

// answererProc is an answerer process.
type answererProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedWriter
}

func (p *answererProc) logs() string {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	return p.stderr.w.String()
}

// startAnswerer runs the answerer binary with env and waits until its
// /readyz answers 200.
func startAnswerer(t *testing.T, bin string, env ...string) *answererProc {
	t.Helper()
	addr := proctest.FreeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "KCHAT_ANSWERER_ADDR="+addr, "KCHAT_LOG_LEVEL=warn"), env...)
	p := &answererProc{cmd: cmd, done: make(chan struct{}), stderr: &lockedWriter{w: &strings.Builder{}}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("answerer exited during startup:\n%s", p.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("answerer not ready within 60 s:\n%s", p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *answererProc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// kill sends SIGKILL and waits until the process is gone.
func (p *answererProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
