package ports

import (
	"context"
	"time"

	"github.com/kchat/kchat/domain"
)

// MessageQueue hands out the next unconsumed messages of a topic to any
// number of concurrent callers, for the process's consumer group.
//
// Next leases up to req.Limit messages of req.Type that no other caller
// holds, in offset order within each partition, waiting up to req.Wait for
// at least one (it returns an empty result, not an error, when none came). A
// leased message is invisible to other callers until it is acknowledged
// (Ack: delivered for good; the committed offset may move past it) or
// released (Release: back at the head, served next), or until its lease
// expires (released automatically). Errors: domain.ErrUnavailable when the
// broker does not answer; ctx ending returns what was leased so far, or
// ctx.Err() with nothing leased.
//
// Ack and Release take receipts from Next. Ack returns a
// *domain.UnknownReceiptsError naming the receipts that are not (or no
// longer) leased, made up or altered, or issued for another consumer group;
// the others are acknowledged. A receipt that another member of the group
// issued may be forwarded to it (the Kafka adapter does): it counts as
// acknowledged only once that member applied it, and as unknown when that
// member did not hold it or did not answer in time. Ack may block that
// long. Release ignores unknown receipts.
//
// Browse reads up to limit messages of typ from the beginning of the topic
// without leasing or committing anything.
//
// All methods are safe for concurrent use.
type MessageQueue interface {
	Next(ctx context.Context, req NextRequest) (Batch, error)
	Ack(ctx context.Context, receipts []string) error
	Release(ctx context.Context, receipts []string) error
	Browse(ctx context.Context, typ domain.MessageType, limit int) ([]domain.Delivery, error)
}

// NextRequest asks a MessageQueue for messages.
type NextRequest struct {
	Type  domain.MessageType
	Limit int
	// Wait is how long to wait for the first message; 0 returns at once.
	Wait time.Duration
	// Lease is how long the messages stay invisible unless acknowledged.
	Lease time.Duration
	// AutoAck says the caller acknowledges as soon as its response is
	// written (ack=auto): a partition handed to another member first waits,
	// briefly, for such leases to settle, so a rebalance re-serves nothing.
	AutoAck bool
}

// Batch is what Next leased, plus the retention gaps found on the way.
type Batch struct {
	Deliveries []domain.Delivery
	Gaps       []domain.Gap
}
