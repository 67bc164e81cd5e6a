package kafka

import (
	"errors"
	"fmt"
	"time"
)

// StageConfig configures the answerer's consume-transform-produce stages.
// docs/design.md ("Answerer", "Failover") weighs each timeout.
type StageConfig struct {
	// Group prefixes the stages' consumer groups (<group>-retrieve,
	// <group>-generate).
	Group string `env:"KCHAT_ANSWERER_GROUP" envDefault:"kchat-answerer"`
	// Instance names this process among the answerer's replicas: its
	// static group membership (group.instance.id) and part of its
	// transactional ids. Each replica needs its own; a restarted replica
	// reuses its name, so it takes its partitions back at once and its
	// transactional id fences the process it replaces.
	Instance string `env:"KCHAT_ANSWERER_INSTANCE"`
	// RetryBackoff is the wait before a failed batch (a dependency such as
	// Redis down) is tried again; it doubles up to maxRetryBackoff (500 ms) or
	// itself when it is longer.
	RetryBackoff time.Duration `env:"KCHAT_ANSWERER_RETRY_BACKOFF" envDefault:"500ms"`
	// SessionTimeout is how long a stage's group waits for a replica that
	// stopped heartbeating (killed, hung) before giving its partitions to
	// the others. The broker must allow it: between its
	// group.min.session.timeout.ms (6 s by default, the default here) and
	// group.max.session.timeout.ms (30 min).
	SessionTimeout time.Duration `env:"KCHAT_ANSWERER_SESSION_TIMEOUT" envDefault:"6s"`
	// TransactionTimeout is how long the broker lets a stage's transaction
	// stay open before aborting it. A transaction opens with the batch's
	// first output record, after every transform (a slow generator's
	// included), and ends with the commit; a process killed inside it
	// holds back read_committed readers of its outputs, and the offsets of
	// its inputs, until then, unless its own restart fences it first.
	// Zero means DefaultTransactionTimeout.
	TransactionTimeout time.Duration `env:"KCHAT_ANSWERER_TRANSACTION_TIMEOUT" envDefault:"10s"`
	// Concurrency is how many sessions of a batch a stage transforms at
	// once (a session's own messages always go one after the other). A
	// transform mostly waits (the session store, the delta writes, a
	// model), so a stage answers at most about Concurrency ÷ the time of
	// one transform per second (docs/performance.md, "Exactly-once
	// without the wait", measures 16 against 64).
	Concurrency int `env:"KCHAT_ANSWERER_CONCURRENCY" envDefault:"16"`
}

// DefaultTransactionTimeout is KCHAT_ANSWERER_TRANSACTION_TIMEOUT's default.
const DefaultTransactionTimeout = 10 * time.Second

// The bounds of the stages' timeouts. Kafka refuses a session timeout
// outside group.min/max.session.timeout.ms (6 s and 30 min by default, a
// test cluster may lower the minimum: the stage then stops with an error
// naming the variable) and a transaction timeout above
// transaction.max.timeout.ms (15 min by default).
const (
	minSessionTimeout     = time.Second
	maxSessionTimeout     = 30 * time.Minute
	minTransactionTimeout = time.Second
	maxTransactionTimeout = 15 * time.Minute
)

// Validate reports the first wrong setting, naming its variable.
func (c StageConfig) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("KCHAT_ANSWERER_GROUP must not be empty")
	case c.Instance == "":
		return errors.New("KCHAT_ANSWERER_INSTANCE must not be empty (it defaults to the host name)")
	case c.RetryBackoff < time.Millisecond || c.RetryBackoff > time.Minute:
		return fmt.Errorf("KCHAT_ANSWERER_RETRY_BACKOFF must be between 1ms and 1m, got %s", c.RetryBackoff)
	case c.SessionTimeout < minSessionTimeout || c.SessionTimeout > maxSessionTimeout:
		return fmt.Errorf("KCHAT_ANSWERER_SESSION_TIMEOUT must be between %s and %s (and within the broker's group.min.session.timeout.ms, 6s by default, and group.max.session.timeout.ms), got %s",
			minSessionTimeout, maxSessionTimeout, c.SessionTimeout)
	case c.TransactionTimeout < minTransactionTimeout || c.TransactionTimeout > maxTransactionTimeout:
		return fmt.Errorf("KCHAT_ANSWERER_TRANSACTION_TIMEOUT must be between %s and %s (the broker's transaction.max.timeout.ms by default), got %s",
			minTransactionTimeout, maxTransactionTimeout, c.TransactionTimeout)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("KCHAT_ANSWERER_CONCURRENCY must be between 1 and 1024, got %d", c.Concurrency)
	}
	return nil
}
