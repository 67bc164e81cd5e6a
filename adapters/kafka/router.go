package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// Answer routing modes (KCHAT_ANSWER_ROUTING).
const (
	// RoutePartition: each gateway owns answer partitions through the
	// gateway group and names one in each query (docs/design.md, "Answer
	// routing").
	RoutePartition = "partition"
	// RouteBroadcast: every gateway reads every answer (kchat before issue
	// 19; the baseline of make bench's scale scenario).
	RouteBroadcast = "broadcast"
)

// RoutingConfig configures how a gateway gets the answers of its sockets.
type RoutingConfig struct {
	// Mode is partition (the default) or broadcast.
	Mode string `env:"KCHAT_ANSWER_ROUTING" envDefault:"partition"`
	// Group is the consumer group of the gateways, under the topic prefix:
	// its members share the answer topic's partitions.
	Group string `env:"KCHAT_GATEWAY_GROUP" envDefault:"kchat-gateway"`
	// Grace is how long a gateway still reads a partition it gave up (to
	// a gateway that joined), and how long it reads every partition when a
	// resumed session waits for answers routed elsewhere: the longest an
	// answer is waited for.
	Grace time.Duration `env:"KCHAT_ROUTING_GRACE" envDefault:"2m"`
	// SessionTimeout is how soon the group gives a dead gateway's
	// partitions to the others.
	SessionTimeout time.Duration `env:"KCHAT_GATEWAY_SESSION_TIMEOUT" envDefault:"10s"`
}

// DefaultRoutingConfig is the configuration with every default applied.
func DefaultRoutingConfig() RoutingConfig {
	return RoutingConfig{Mode: RoutePartition, Group: "kchat-gateway", Grace: 2 * time.Minute, SessionTimeout: 10 * time.Second}
}

// Validate names the variable at fault.
func (c RoutingConfig) Validate() error {
	switch {
	case c.Mode != RoutePartition && c.Mode != RouteBroadcast:
		return fmt.Errorf("KCHAT_ANSWER_ROUTING must be partition or broadcast, got %q", c.Mode)
	case c.Mode == RoutePartition && c.Group == "":
		return errors.New("KCHAT_GATEWAY_GROUP must not be empty")
	case c.Grace < time.Second:
		return fmt.Errorf("KCHAT_ROUTING_GRACE must be at least 1s, got %s", c.Grace)
	case c.SessionTimeout < time.Second || c.SessionTimeout > 5*time.Minute:
		return fmt.Errorf("KCHAT_GATEWAY_SESSION_TIMEOUT must be between 1s and 5m, got %s", c.SessionTimeout)
	}
	return nil
}

// Router is a gateway's membership of the gateway group: the partitions of
// the answer topic it owns, which it names in its queries, and the
// partitions its feeds read (the same numbers of the answer and of the
// stream topic). A feed reads:
//
//   - every partition until the group first gives the gateway some, and for
//     Grace after: questions asked meanwhile named none, and are answered by
//     session key;
//   - the partitions it owns, from their end when it got them;
//   - a partition it gave up, for Grace after: answers to questions asked
//     while it owned it still come there;
//   - every partition while a resumed session waits (Widen).
//
// With more gateways than partitions, a gateway the group gives none reads
// every partition, as in broadcast mode: correct, at broadcast's cost.
type Router struct {
	cfg   RoutingConfig
	cl    *kgo.Client // the group member; it fetches nothing itself
	topic string
	log   *slog.Logger

	mu         sync.Mutex
	owned      []int32              // sorted
	released   map[int32]time.Time  // partitions given up, read until then
	wideUntil  time.Time            // read every partition until then
	widened    int                  // Widen holders
	followers  []*partitionFollower // the feeds' readers
	ownedGauge prometheus.Gauge     // kchat_gateway_answer_partitions_owned
	assigned   bool                 // the group gave a first assignment
	changed    chan struct{}
}

// NewRouter creates the group member (not started: Run joins). Zero
// fields of rcfg take DefaultRoutingConfig's.
func NewRouter(cfg Config, rcfg RoutingConfig, log *slog.Logger, metrics *Metrics) (*Router, error) {
	d := DefaultRoutingConfig()
	rcfg.Group, rcfg.Grace, rcfg.SessionTimeout = cmp.Or(rcfg.Group, d.Group), cmp.Or(rcfg.Grace, d.Grace), cmp.Or(rcfg.SessionTimeout, d.SessionTimeout)
	r := &Router{
		cfg: rcfg, topic: domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer), log: log.With("component", "answer-router"),
		released: map[int32]time.Time{}, changed: make(chan struct{}, 1),
		ownedGauge: registerOnce(metrics, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kchat", Subsystem: "gateway", Name: "answer_partitions_owned",
			Help: "Partitions of the answer topic this gateway owns in the gateway group (answer routing): 0 while it owns none and reads every answer.",
		})),
	}
	mcfg := cfg
	mcfg.ClientID = cfg.ClientID + "-gateway-member"
	cl, err := NewClient(mcfg, log, metrics.client("gateway-member"),
		kgo.ConsumerGroup(cfg.TopicPrefix+rcfg.Group),
		kgo.ConsumeTopics(r.topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(rcfg.SessionTimeout),
		kgo.HeartbeatInterval(min(time.Second, rcfg.SessionTimeout/3)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) { r.assign(got[r.topic]) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { r.release(lost[r.topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { r.release(lost[r.topic]) }),
	)
	if err != nil {
		return nil, err
	}
	r.cl = cl
	return r, nil
}

// Run is the membership until ctx ends; then it leaves the group, so the
// others take its partitions at once.
func (r *Router) Run(ctx context.Context) error {
	// The member only holds partitions: the feeds read them.
	r.cl.PauseFetchTopics(r.topic)
	defer func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.cl.LeaveGroupContext(lctx)
		r.cl.Close()
	}()
	refused := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			// Nothing to fetch: the poll surfaces the group's errors.
			r.cl.PollFetches(ctx).EachError(func(_ string, _ int32, err error) {
				switch {
				case errors.Is(err, kerr.InvalidSessionTimeout):
					select {
					case refused <- fmt.Errorf("the broker refused KCHAT_GATEWAY_SESSION_TIMEOUT=%s: it must lie within the broker's group.min.session.timeout.ms (6s by default) and group.max.session.timeout.ms: %w", r.cfg.SessionTimeout, err):
					default:
					}
				case !errors.Is(err, context.Canceled):
					r.log.Warn("gateway group error", "err", err)
				}
			})
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-refused:
			return err
		case <-tick.C:
		case <-r.changed:
		}
		if err := r.apply(ctx); err != nil && ctx.Err() == nil {
			// The topics may be being created: try again soon, not in a
			// second (a feed not reading yet keeps the gateway unready).
			time.AfterFunc(100*time.Millisecond, r.poke)
		}
	}
}

// Reply is the partition a question of session asked now names: one the
// gateway owns, the same for a session while the ownership holds; unset
// when it owns none (it reads every partition then).
func (r *Router) Reply(session string) domain.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.owned) == 0 {
		return domain.Reply{}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(session))
	return domain.ReplyTo(r.owned[h.Sum32()%uint32(len(r.owned))])
}

// Widen has the feeds read every partition from their ends now until
// release is called (and at most Grace): it returns once they do, so an
// answer committed after it returns is delivered, wherever it was routed.
func (r *Router) Widen(ctx context.Context) (release func(), err error) {
	r.mu.Lock()
	r.widened++
	r.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			r.mu.Lock()
			r.widened--
			r.mu.Unlock()
			r.poke()
		})
	}
	timer := time.AfterFunc(r.cfg.Grace, done)
	if err := r.apply(ctx); err != nil {
		timer.Stop()
		done()
		return nil, err
	}
	return func() { timer.Stop(); done() }, nil
}

// Owned is the partitions the gateway owns now.
func (r *Router) Owned() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.owned)
}

func (r *Router) assign(ps []int32) {
	r.mu.Lock()
	for _, p := range ps {
		if !slices.Contains(r.owned, p) {
			r.owned = append(r.owned, p)
		}
		delete(r.released, p)
	}
	slices.Sort(r.owned)
	r.ownedGauge.Set(float64(len(r.owned)))
	if !r.assigned && len(r.owned) > 0 {
		// Questions asked before named no partition: their answers go by
		// session key, anywhere.
		r.assigned = true
		r.wideUntil = time.Now().Add(r.cfg.Grace)
	}
	owned := slices.Clone(r.owned)
	r.mu.Unlock()
	r.log.Debug("answer partitions assigned", "added", ps, "owned", owned)
	r.poke()
}

func (r *Router) release(ps []int32) {
	r.mu.Lock()
	until := time.Now().Add(r.cfg.Grace)
	for _, p := range ps {
		r.owned = slices.DeleteFunc(r.owned, func(o int32) bool { return o == p })
		r.released[p] = until
	}
	r.ownedGauge.Set(float64(len(r.owned)))
	owned := slices.Clone(r.owned)
	r.mu.Unlock()
	r.log.Debug("answer partitions given up (still read for the grace period)", "released", ps, "owned", owned, "grace", r.cfg.Grace)
	r.poke()
}

func (r *Router) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// want is what the feeds should read now: every partition, or these.
func (r *Router) want(now time.Time) (all bool, ps []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.widened > 0 || len(r.owned) == 0 || now.Before(r.wideUntil) {
		return true, nil
	}
	ps = slices.Clone(r.owned)
	for p, until := range r.released {
		if now.Before(until) {
			ps = append(ps, p)
		} else {
			delete(r.released, p)
		}
	}
	slices.Sort(ps)
	return false, slices.Compact(ps)
}

// follow registers a feed's reader.
func (r *Router) follow(f *partitionFollower) {
	r.mu.Lock()
	r.followers = append(r.followers, f)
	r.mu.Unlock()
	r.poke()
}

// apply brings every follower to what it should read now.
func (r *Router) apply(ctx context.Context) error {
	all, ps := r.want(time.Now())
	r.mu.Lock()
	followers := slices.Clone(r.followers)
	r.mu.Unlock()
	var errs []error
	for _, f := range followers {
		if err := f.apply(ctx, all, ps); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// partitionFollower is a feed's reader in routed mode: a group-less client
// consuming the partitions the router says, each from its end when added.
type partitionFollower struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	mu      sync.Mutex // serialises apply
	reading map[int32]bool
	all     bool // every partition is read (pinAtEnd), whichever exist
}

// readingAll notes that the feed reads every partition (it was pinned at
// the end of each, or consumes the whole topic, which did not exist yet).
func (f *partitionFollower) readingAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = true
}

func newPartitionFollower(cl *kgo.Client, adm *kadm.Client, topic string) *partitionFollower {
	return &partitionFollower{cl: cl, adm: adm, topic: topic, reading: map[int32]bool{}}
}

// apply reads every partition (all) or exactly ps: new ones from their
// end listed now, so that nothing committed after apply returns is
// missed; the others it stops reading.
func (f *partitionFollower) apply(ctx context.Context, all bool, ps []int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := f.adm.ListEndOffsets(lctx, f.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list the end of %s: %w", f.topic, err)
	}
	if f.all {
		ends.Each(func(o kadm.ListedOffset) { f.reading[o.Partition] = true })
		f.all = false
	}
	want := map[int32]bool{}
	if all {
		ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = true })
	}
	for _, p := range ps {
		want[p] = true
	}
	add := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if want[o.Partition] && !f.reading[o.Partition] {
			add[o.Partition] = kgo.NewOffset().At(o.Offset)
		}
	})
	var drop []int32
	for p := range f.reading {
		if !want[p] {
			drop = append(drop, p)
		}
	}
	if len(drop) > 0 {
		f.cl.RemoveConsumePartitions(map[string][]int32{f.topic: drop})
		for _, p := range drop {
			delete(f.reading, p)
		}
	}
	if len(add) > 0 {
		f.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: add})
		for p := range add {
			f.reading[p] = true
		}
	}
	return nil
}
