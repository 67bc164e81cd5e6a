package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A stage's replica is a static member of its group (KCHAT_ANSWERER_INSTANCE
// is its group.instance.id) with a transactional id of its own. What
// happens to its partitions when it goes:
//   - killed and restarted under the same instance id: the restart takes
//     the partitions back at once (no rebalance), and initProducer aborts
//     the transaction the killed process left open;
//   - killed for good: the group gives its partitions to the others after
//     KCHAT_ANSWERER_SESSION_TIMEOUT, and the member that takes them over
//     fences it (fenceDeparted) rather than wait for the broker to abort
//     its open transaction after KCHAT_ANSWERER_TRANSACTION_TIMEOUT;
//   - stopped gracefully: leave hands its partitions over at once.

// leaveTimeout bounds the leave request of a stopping stage, and
// fenceTimeout the fencing of departed replicas on an assignment.
const (
	leaveTimeout = 5 * time.Second
	fenceTimeout = 5 * time.Second
)

// refusedError is a setting the broker refuses: retrying cannot help, so
// the stage stops.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// initProducer initializes the session's transactional producer before
// the first batch. InitProducerID with this instance's transactional id
// fences a killed predecessor and aborts the transaction it left open at
// once, rather than after its transaction timeout. The restarted member
// could not wait for that: its predecessor's offsets are pending in that
// transaction, so the member's offset fetch (at require_stable) waits for
// it to end, while franz-go would only initialize the producer at the
// first record, after the fetch.
func (s *Stage) initProducer(ctx context.Context, cl *kgo.Client) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := cl.ProducerID(ictx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("stage %s: initialize the transactional producer: %w", s.name, err)
	}
	return nil
}

// leave removes this instance from the stage's group: the close of a
// static member does not, so without it a replica stopped for good (scaled
// in, replaced under another name) would hold its partitions until its
// session timed out. A restart under the same name then joins as a new
// member, as before static membership. It runs after the session's client
// closed, so no transaction of this process can follow it.
func (s *Stage) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	cl, err := kgo.NewClient(s.base...)
	if err != nil {
		s.log.Warn("cannot leave the group; its partitions move after the session timeout", "err", err)
		return
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(s.group).InstanceIDs(s.cfg.Instance).Reason("answerer stopping"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) { // not a member: nothing to hand over
		s.log.Warn("cannot leave the group; its partitions move after the session timeout", "err", err)
	}
}

// fenceDeparted aborts, at once, the open transactions of this stage's
// replicas that are no longer members of its group. A replica killed for
// good leaves its last transaction open until the broker times it out
// (KCHAT_ANSWERER_TRANSACTION_TIMEOUT, then up to the broker's
// transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by
// default); until then it holds back read_committed readers of its
// outputs, and its pending offsets hold back the offset fetch of the
// member taking its partitions over. It runs in OnPartitionsAssigned,
// which franz-go finishes before fetching the assigned partitions'
// offsets: the group has just changed, possibly by dropping a replica.
//
// Fencing is InitProducerID with the departed replica's transactional id,
// as its own restart would do. A replica that was only slow (dropped from
// the group, then back) finds its transaction aborted and starts a new
// session; nothing is lost or duplicated, its inputs are redone.
func (s *Stage) fenceDeparted(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	prefix := s.group + "-" // transactional ids are <group>-<instance>
	open, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		s.log.Warn("cannot list open transactions to fence departed replicas", "err", err)
		return
	}
	var departed []string
	for id := range open {
		if strings.HasPrefix(id, prefix) && id != prefix+s.cfg.Instance {
			departed = append(departed, id)
		}
	}
	if len(departed) == 0 {
		return
	}
	groups, err := adm.DescribeGroups(ctx, s.group)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		s.log.Warn("cannot describe the group to fence departed replicas", "err", err)
		return
	}
	for _, m := range groups[s.group].Members {
		if m.InstanceID != nil {
			departed = slices.DeleteFunc(departed, func(id string) bool { return id == prefix+*m.InstanceID })
		}
	}
	for _, id := range departed {
		if err := s.fence(ctx, id); err != nil {
			s.log.Warn("cannot fence a departed replica's transaction; the broker aborts it after its timeout", "transactional_id", id, "err", err)
			continue
		}
		s.log.Info("fenced a departed replica's open transaction", "transactional_id", id)
	}
}

// fence initializes a producer with transactional id id: the broker aborts
// the transaction id has open, if any, and fences its producer.
func (s *Stage) fence(ctx context.Context, id string) error {
	cl, err := kgo.NewClient(append(slices.Clone(s.base), kgo.TransactionalID(id))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, _, err = cl.ProducerID(ctx)
	return err
}
