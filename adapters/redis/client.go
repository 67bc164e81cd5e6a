package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client timeouts, so that an outage answers ErrUnavailable within seconds
// instead of holding a request; a URL's own dial_timeout etc. win.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 2 * time.Second
	poolTimeout = 3 * time.Second
	// opTimeout bounds one call, retries included, for a caller whose ctx
	// has no shorter deadline; a write that waits for replicas gets
	// KCHAT_REDIS_WAIT_TIMEOUT more.
	opTimeout = 2500 * time.Millisecond
	// maxWaitTimeout bounds KCHAT_REDIS_WAIT_TIMEOUT: below ioTimeout, so
	// a WAIT answers before the connection's read deadline.
	maxWaitTimeout = 1500 * time.Millisecond
)

// A write that waits for replicas runs on a connection of its own (see
// runWrite); when the cluster moved the session's slot or lost its master,
// it learns the new layout and tries again, up to pinnedAttempts times,
// pinnedBackoff more apart each time, within the call's deadline.
const (
	pinnedAttempts = 4
	pinnedBackoff  = 150 * time.Millisecond
)

// newClient makes the go-redis client of the deployment cfg names
// (validated): a Client for one node; through go-redis's UniversalClient a
// ClusterClient for a cluster, and for Sentinel a failover Client (a
// Client whose connections go to the master the sentinels name: it asks
// them at each dial and drops its connections when they announce a new
// master).
func newClient(cfg Config) (goredis.UniversalClient, error) {
	if cfg.URL != "" {
		opts, err := parseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		if opts.DialTimeout == 0 {
			opts.DialTimeout = dialTimeout
		}
		if opts.ReadTimeout == 0 {
			opts.ReadTimeout = ioTimeout
		}
		if opts.WriteTimeout == 0 {
			opts.WriteTimeout = ioTimeout
		}
		if opts.PoolTimeout == 0 {
			opts.PoolTimeout = poolTimeout
		}
		if opts.MaxRetries == 0 {
			// Every script is idempotent, so one retry is safe; more would only
			// lengthen an outage's answer.
			opts.MaxRetries = 1
		}
		if opts.DialerRetries == 0 {
			opts.DialerRetries = 2 // the default 5 would stretch a refused dial to ~1 s
		}
		opts.ContextTimeoutEnabled = true
		opts.MaintNotificationsConfig = noMaintNotifications()
		return goredis.NewClient(opts), nil
	}
	opts := &goredis.UniversalOptions{
		Username: cfg.Username, Password: cfg.Password,
		DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, PoolTimeout: poolTimeout,
		MaxRetries: 1, DialerRetries: 2, ContextTimeoutEnabled: true,
		MaintNotificationsConfig: noMaintNotifications(),
	}
	var err error
	if cfg.ClusterNodes != "" {
		opts.IsClusterMode = true // a ClusterClient even for one seed node
		opts.Addrs, err = parseAddrs("KCHAT_REDIS_CLUSTER_NODES", cfg.ClusterNodes)
	} else {
		opts.MasterName, opts.SentinelPassword = cfg.SentinelMaster, cfg.SentinelPassword
		opts.Addrs, err = parseAddrs("KCHAT_REDIS_SENTINEL_ADDRS", cfg.SentinelAddrs)
	}
	if err != nil {
		return nil, err
	}
	return goredis.NewUniversalClient(opts), nil
}

// noMaintNotifications turns off go-redis's maintenance notifications
// (a handshake for Redis Enterprise's hitless upgrades): in its default
// auto mode every new connection tries the handshake, and when the server
// refuses it (Redis 7 does), go-redis v9.23 turns the mode off by writing
// options that the connections of every Conn share, unlocked: a data race
// between the pinned connections of concurrent writes (runWrite).
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// pinnable reports whether a write on client can be followed by WAIT on its
// connection.
func pinnable(client goredis.UniversalClient) bool {
	switch client.(type) {
	case *goredis.Client, *goredis.ClusterClient:
		return true
	}
	return false
}

// notReplicatedError is a write the master has that fewer replicas than
// KCHAT_REDIS_WAIT_REPLICAS confirmed in time: a master crash now could
// lose it, so the caller is not told it is done (it retries; the write is
// idempotent).
type notReplicatedError struct {
	got, want int
	timeout   time.Duration
}

func (e *notReplicatedError) Error() string {
	return fmt.Sprintf("written on the master, but %d of %d replicas confirmed it within %s (KCHAT_REDIS_WAIT_REPLICAS, KCHAT_REDIS_WAIT_TIMEOUT)", e.got, e.want, e.timeout)
}

// runWrite runs script, which changes the session whose keys are keys,
// and, when writes wait for replicas, WAIT after it. WAIT counts the
// replicas that have every write of the connection it is sent on, so it
// must follow the script on the same connection: a pooled client could
// send it on another, where it would prove nothing (and a cluster client
// sends a keyless command to any node). So the script runs on a connection
// pinned to the master of the session's slot. wrote, when not nil, tells
// from the reply whether anything was written; a nil reply (session
// missing, another user's) never is, and is not waited for.
func (s *Sessions) runWrite(ctx context.Context, script *goredis.Script, keys []string, wrote func(*goredis.Cmd) bool, args ...any) *goredis.Cmd {
	if s.replicas == 0 {
		return script.Run(ctx, s.client, keys, args...)
	}
	for attempt := 1; ; attempt++ {
		cmd, retry := s.runPinned(ctx, script, keys, wrote, args...)
		if !retry || attempt == pinnedAttempts || ctx.Err() != nil {
			return cmd
		}
		if c, ok := s.client.(*goredis.ClusterClient); ok {
			c.ReloadState(ctx) // in the background; the backoff gives it time
		}
		t := time.NewTimer(time.Duration(attempt) * pinnedBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return cmd
		case <-t.C:
		}
	}
}

// runPinned is one attempt of runWrite; retry is true when another attempt
// may reach the slot's (new) master.
func (s *Sessions) runPinned(ctx context.Context, script *goredis.Script, keys []string, wrote func(*goredis.Cmd) bool, args ...any) (cmd *goredis.Cmd, retry bool) {
	conn, err := s.pin(ctx, keys[0])
	if err != nil {
		return failed(ctx, err), stale(err)
	}
	defer func() { _ = conn.Close() }()
	cmd = script.Run(ctx, conn, keys, args...)
	if err := cmd.Err(); err != nil {
		return cmd, stale(err)
	}
	if wrote != nil && !wrote(cmd) {
		return cmd, false
	}
	got, err := conn.Wait(ctx, s.replicas, s.cfg.WaitTimeout).Result()
	if err != nil {
		return failed(ctx, err), stale(err)
	}
	if int(got) < s.replicas {
		return failed(ctx, &notReplicatedError{got: int(got), want: s.replicas, timeout: s.cfg.WaitTimeout}), false
	}
	return cmd, false
}

// pin returns a connection of its own to the master that serves key.
// Behind Sentinel, it is one of the pool's, dialed to the master the
// sentinels named then; the failover client drops them all when the
// sentinels announce a new master, and a retry after a failed write
// (stale) takes another.
func (s *Sessions) pin(ctx context.Context, key string) (*goredis.Conn, error) {
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		master, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return master.Conn(), nil
	case *goredis.Client:
		return c.Conn(), nil
	}
	return nil, fmt.Errorf("cannot wait for replicas on a %T", s.client)
}

// stale reports whether err says the node no longer serves the slot as its
// master, or could not be reached: the cluster may have moved on.
func stale(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, goredis.Nil) {
		return false
	}
	if _, ok := goredis.IsMovedError(err); ok {
		return true
	}
	if _, ok := goredis.IsAskError(err); ok {
		return true
	}
	return unavailable(err)
}

func failed(ctx context.Context, err error) *goredis.Cmd {
	cmd := goredis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

// pingAny pings one node (behind Sentinel, the master), or every master
// of a cluster at once: nil as soon as one answers (a paused master does
// not hold the answer up).
func pingAny(ctx context.Context, client goredis.UniversalClient) error {
	cluster, ok := client.(*goredis.ClusterClient)
	if !ok {
		return client.Ping(ctx).Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the other pings stop with the first answer
	answered := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- cluster.ForEachMaster(ctx, func(ctx context.Context, master *goredis.Client) error {
			if err := master.Ping(ctx).Err(); err != nil {
				return err
			}
			select {
			case answered <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-answered:
		return nil
	case err := <-done:
		select {
		case <-answered:
			return nil
		default:
		}
		if err == nil {
			err = errors.New("the cluster has no master")
		}
		return err
	}
}
