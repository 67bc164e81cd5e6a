package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/domain"
)

// QueueConfig configures the consumer service's group consumers.
type QueueConfig struct {
	// Group names the consumer group; each topic gets its own group,
	// Group + "-" + type, so one topic's rebalances never stall another's.
	Group string `env:"KCHAT_CONSUMER_GROUP" envDefault:"kchat-consumer"`
	// Groups names a type's group instead ("query=query-fetcher,…"), so a
	// switch from the old services continues at their groups' committed
	// offsets; types it leaves out keep Group + "-" + type.
	Groups map[string]string `env:"KCHAT_CONSUMER_GROUPS" envKeyValSeparator:"="`
	// PartitionBuffer bounds the records a partition holds in memory
	// (buffered, leased and done but not yet committable).
	PartitionBuffer int `env:"KCHAT_CONSUMER_PARTITION_BUFFER" envDefault:"500"`
	// SettleTimeout is how long a revocation waits for auto-acknowledged
	// deliveries whose responses are being written.
	SettleTimeout time.Duration `env:"KCHAT_CONSUMER_SETTLE_TIMEOUT" envDefault:"5s"`
	// SessionTimeout is how long the group waits for a silent member (one
	// that crashed) before handing its partitions to the others.
	SessionTimeout time.Duration `env:"KCHAT_CONSUMER_SESSION_TIMEOUT" envDefault:"10s"`
	// MaxInFlight bounds, per partition, the auto-acknowledged messages
	// handed out beyond the last durable commit: after a crash (kill -9) at
	// most this many per partition are served again.
	MaxInFlight int `env:"KCHAT_CONSUMER_MAX_IN_FLIGHT" envDefault:"32"`
	// ReceiptKey signs ack=manual receipts (docs/security.md, "Consumer
	// receipts"); every replica of the group must share it. Never logged.
	ReceiptKey string `env:"KCHAT_RECEIPT_KEY"`
}

// DefaultQueueConfig is the configuration with every default applied. It
// has no ReceiptKey: that has no default.
func DefaultQueueConfig() QueueConfig {
	return QueueConfig{Group: "kchat-consumer", PartitionBuffer: 500, SettleTimeout: 5 * time.Second, SessionTimeout: 10 * time.Second, MaxInFlight: 32}
}

// GroupOf is the consumer group of typ's topic.
func (c QueueConfig) GroupOf(typ domain.MessageType) string {
	if g, ok := c.Groups[string(typ)]; ok {
		return g
	}
	return c.Group + "-" + string(typ)
}

// Validate reports the first wrong setting, naming its variable.
func (c QueueConfig) Validate() error {
	if err := c.validateGroups(); err != nil {
		return err
	}
	switch {
	case c.Group == "":
		return errors.New("KCHAT_CONSUMER_GROUP must not be empty")
	case c.PartitionBuffer < 1 || c.PartitionBuffer > 100000:
		return fmt.Errorf("KCHAT_CONSUMER_PARTITION_BUFFER must be between 1 and 100000, got %d", c.PartitionBuffer)
	case c.SettleTimeout < 0 || c.SettleTimeout > time.Minute:
		return fmt.Errorf("KCHAT_CONSUMER_SETTLE_TIMEOUT must be between 0s and 1m, got %s", c.SettleTimeout)
	case c.MaxInFlight < 1 || c.MaxInFlight > 100000:
		return fmt.Errorf("KCHAT_CONSUMER_MAX_IN_FLIGHT must be between 1 and 100000, got %d", c.MaxInFlight)
	case c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute:
		// Kafka's default group.min.session.timeout.ms is 6 s.
		return fmt.Errorf("KCHAT_CONSUMER_SESSION_TIMEOUT must be between 6s and 5m, got %s", c.SessionTimeout)
	case c.ReceiptKey == "":
		return errors.New("KCHAT_RECEIPT_KEY is required: every consumer replica signs and checks ack=manual receipts with it, " +
			"so all must share one; make one with `openssl rand -hex 32`")
	case len(c.ReceiptKey) < ledger.MinKeyLen:
		return fmt.Errorf("KCHAT_RECEIPT_KEY must be at least %d bytes, got %d; make one with `openssl rand -hex 32`", ledger.MinKeyLen, len(c.ReceiptKey))
	}
	return nil
}

// validateGroups checks KCHAT_CONSUMER_GROUPS: known types, non-empty
// names, and one group per topic (two topics' consumers in one group
// would rebalance each other).
func (c QueueConfig) validateGroups() error {
	types := make([]string, 0, len(c.Groups))
	for typ := range c.Groups {
		types = append(types, typ)
	}
	slices.Sort(types)
	for _, typ := range types {
		name := c.Groups[typ]
		switch {
		case !domain.MessageType(typ).Valid():
			return fmt.Errorf("KCHAT_CONSUMER_GROUPS: unknown type %q, want query, prompt or answer (as in query=query-fetcher,prompt=prompt-fetcher)", typ)
		case strings.TrimSpace(name) == "":
			return fmt.Errorf("KCHAT_CONSUMER_GROUPS: the group of %s is empty", typ)
		case strings.TrimSpace(name) != name:
			return fmt.Errorf("KCHAT_CONSUMER_GROUPS: the group of %s, %q, has surrounding spaces", typ, name)
		}
	}
	seen := map[string]domain.MessageType{}
	for _, typ := range domain.MessageTypes {
		g := c.GroupOf(typ)
		if other, ok := seen[g]; ok {
			return fmt.Errorf("KCHAT_CONSUMER_GROUPS: %s and %s would share the group %q; each type needs its own", other, typ, g)
		}
		seen[g] = typ
	}
	return nil
}
