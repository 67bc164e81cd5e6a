// Package ledger is the consumer machinery the queues share (the Kafka
// adapter's group consumers and the in-memory queue): it tracks fetched
// records through their leases, says how far each partition's committed
// offset may move, and issues and verifies the signed receipts that name
// leases.
package ledger

import (
	"fmt"
	"sync"
	"time"
)

// Ledger is kchat's delivery policy for one topic in one consumer-group
// member: it tracks every fetched record from buffered, to leased to a
// caller, to done, and says how far the committed offset of each partition
// may move. The committed offset only ever advances over a contiguous run of
// done records, so nothing is skipped; a record is leased to one caller at a
// time, so concurrent callers never get the same record; a released or
// expired lease puts the record back at the head of its partition.
//
// Records are added in offset order per partition. Gaps in offsets (control
// records of transactions) are fine: commit points are the offset after the
// last done record. Safe for concurrent use.
type Ledger[T any] struct {
	id          string // <tag>~<instance>: every receipt starts with it
	signer      *Signer
	maxInFlight int

	mu       sync.Mutex
	parts    map[int32]*partition[T]
	order    []int32 // assigned partitions, for round-robin serving
	rr       int
	leases   map[string]*entry[T]
	seq      uint64
	buffered int
	arrived  chan struct{} // closed and replaced when records become available
}

type partition[T any] struct {
	epoch  uint64
	frozen bool // being revoked: nothing more is handed out
	// out counts records handed out with settle (auto acknowledgement) that
	// are not yet covered by a durable commit: what a crash would serve again.
	out     int
	marks   []commitMark // commit points reported, with how many records each covers
	entries []*entry[T]  // in offset order, from the oldest not yet done
	commit  int64        // next offset to commit; -1 until something is done
	dirty   bool         // commit moved since Commits last reported it
	// skip holds offsets an earlier owner had acknowledged beyond its
	// commit (Skip): they are done as soon as they are fetched.
	skip     map[int64]bool
	skipFrom int64 // the commit the earlier owner left
}

type commitMark struct {
	commit int64
	n      int
}

type entryState int

const (
	stateBuffered entryState = iota
	stateLeased
	stateDone
)

type entry[T any] struct {
	partition int32
	epoch     uint64
	offset    int64
	item      T
	state     entryState
	receipt   string
	expires   time.Time
	settle    bool // leased with a settle deadline the revoker waits for
}

// Leased is one record handed out by Take.
type Leased[T any] struct {
	Partition int32
	Offset    int64
	Item      T
	Receipt   string
}

// New returns an empty ledger whose receipts carry tag and are signed by
// signer (see Signer.Verify); tag is made of what a Kafka topic name may
// hold: letters, digits, '.', '_' and '-'. It panics on another tag or a nil
// signer. At most maxInFlight auto-acknowledged records of a partition are
// out at once beyond its last durable commit (0: no bound): that bounds what
// a crash serves again.
func New[T any](tag string, maxInFlight int, signer *Signer) *Ledger[T] {
	if signer == nil {
		panic("ledger: no receipt signer")
	}
	return &Ledger[T]{
		id:          newID(tag),
		signer:      signer,
		maxInFlight: maxInFlight,
		parts:       map[int32]*partition[T]{},
		leases:      map[string]*entry[T]{},
		arrived:     make(chan struct{}),
	}
}

// Assign starts tracking partition p under a new epoch; receipts of earlier
// epochs of p become unknown.
func (l *Ledger[T]) Assign(p int32, epoch uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(p)
	l.parts[p] = &partition[T]{epoch: epoch, commit: -1}
	l.order = append(l.order, p)
}

// Revoke stops tracking p, dropping its buffered and leased records, and
// returns the commit point not yet reported by Commits (ok false if none).
func (l *Ledger[T]) Revoke(p int32) (commit int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil {
		return 0, false
	}
	commit, ok = part.commit, part.dirty
	l.dropLocked(p)
	return commit, ok
}

func (l *Ledger[T]) dropLocked(p int32) {
	part := l.parts[p]
	if part == nil {
		return
	}
	for _, e := range part.entries {
		switch e.state {
		case stateBuffered:
			l.buffered--
		case stateLeased:
			delete(l.leases, e.receipt)
		}
	}
	delete(l.parts, p)
	for i, q := range l.order {
		if q == p {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
}

// Add appends fetched records of partition p (in offset order) if p is
// still assigned under epoch; records of a revoked or re-assigned partition
// are dropped. It returns how many records p now holds.
func (l *Ledger[T]) Add(p int32, epoch uint64, offsets []int64, items []T) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil || part.epoch != epoch {
		return 0
	}
	added := 0
	for i, off := range offsets {
		e := &entry[T]{partition: p, epoch: epoch, offset: off, item: items[i]}
		if part.skip[off] {
			e.state = stateDone // acknowledged under the earlier owner
			delete(part.skip, off)
		} else {
			added++
		}
		part.entries = append(part.entries, e)
	}
	part.advance()
	l.buffered += added
	if added > 0 {
		l.signalLocked()
	}
	return len(part.entries)
}

// Held returns how many records partition p holds in any state.
func (l *Ledger[T]) Held(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil {
		return len(part.entries)
	}
	return 0
}

// Buffered returns how many records wait to be taken, and a channel closed
// when that may have grown.
func (l *Ledger[T]) Buffered() (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buffered, l.arrived
}

func (l *Ledger[T]) signalLocked() {
	close(l.arrived)
	l.arrived = make(chan struct{})
}

// Freeze stops handing out records of p, ahead of its revocation: what is
// leased may still settle, nothing new leaves.
func (l *Ledger[T]) Freeze(p int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil {
		part.frozen = true
	}
}

// Settling returns how many records of p are leased, with either kind of
// acknowledgement: the revoker waits for them (bounded) before it commits
// and hands the partition over.
func (l *Ledger[T]) Settling(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	if part := l.parts[p]; part != nil {
		for _, e := range part.entries {
			if e.state == stateLeased {
				n++
			}
		}
	}
	return n
}

// String describes the ledger for logs and test failures.
func (l *Ledger[T]) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("ledger %s: %d partitions, %d buffered, %d leased", l.id, len(l.parts), l.buffered, len(l.leases))
}
