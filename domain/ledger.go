package domain

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
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
type Ledger struct {
	id          string
	maxInFlight int

	mu       sync.Mutex
	parts    map[int32]*ledgerPartition
	order    []int32 // assigned partitions, for round-robin serving
	rr       int
	leases   map[string]*ledgerEntry
	seq      uint64
	buffered int
	arrived  chan struct{} // closed and replaced when records become available
}

type ledgerPartition struct {
	epoch  uint64
	frozen bool // being revoked: nothing more is handed out
	// out counts records handed out with settle (auto acknowledgement) that
	// are not yet covered by a durable commit: what a crash would serve again.
	out     int
	marks   []commitMark   // commit points reported, with how many records each covers
	entries []*ledgerEntry // in offset order, from the oldest not yet done
	commit  int64          // next offset to commit; -1 until something is done
	dirty   bool           // commit moved since Commits last reported it
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

type ledgerEntry struct {
	partition int32
	epoch     uint64
	offset    int64
	item      any
	state     entryState
	receipt   string
	expires   time.Time
	settle    bool // leased with a settle deadline the revoker waits for
}

// Leased is one record handed out by Take.
type Leased struct {
	Partition int32
	Offset    int64
	Item      any
	Receipt   string
}

// NewLedger returns an empty ledger whose receipts start with tag. At most
// maxInFlight auto-acknowledged records of a partition are out at once
// beyond its last durable commit (0: no bound): that bounds what a crash
// serves again.
func NewLedger(tag string, maxInFlight int) *Ledger {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Ledger{
		id:          tag + "~" + hex.EncodeToString(b[:]),
		maxInFlight: maxInFlight,
		parts:       map[int32]*ledgerPartition{},
		leases:      map[string]*ledgerEntry{},
		arrived:     make(chan struct{}),
	}
}

// Owns reports whether receipt was issued by this ledger (whatever its
// state now).
func (l *Ledger) Owns(receipt string) bool {
	return strings.HasPrefix(receipt, l.id+".")
}

// Assign starts tracking partition p under a new epoch; receipts of earlier
// epochs of p become unknown.
func (l *Ledger) Assign(p int32, epoch uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(p)
	l.parts[p] = &ledgerPartition{epoch: epoch, commit: -1}
	l.order = append(l.order, p)
}

// Revoke stops tracking p, dropping its buffered and leased records, and
// returns the commit point not yet reported by Commits (ok false if none).
func (l *Ledger) Revoke(p int32) (commit int64, ok bool) {
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

func (l *Ledger) dropLocked(p int32) {
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
func (l *Ledger) Add(p int32, epoch uint64, offsets []int64, items []any) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil || part.epoch != epoch {
		return 0
	}
	for i, off := range offsets {
		part.entries = append(part.entries, &ledgerEntry{partition: p, epoch: epoch, offset: off, item: items[i]})
	}
	l.buffered += len(offsets)
	if len(offsets) > 0 {
		l.signalLocked()
	}
	return len(part.entries)
}

// Held returns how many records partition p holds in any state.
func (l *Ledger) Held(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil {
		return len(part.entries)
	}
	return 0
}

// Buffered returns how many records wait to be taken, and a channel closed
// when that may have grown.
func (l *Ledger) Buffered() (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buffered, l.arrived
}

func (l *Ledger) signalLocked() {
	close(l.arrived)
	l.arrived = make(chan struct{})
}

// Take leases up to limit buffered records until now+lease, taking the
// oldest of each partition in turn so partitions are served fairly.
// settle marks leases the revoker should wait for (auto acknowledgement,
// which settles as soon as the response is written).
func (l *Ledger) Take(limit int, now time.Time, lease time.Duration, settle bool) []Leased {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Leased
	n := len(l.order)
	cursor := make(map[int32]int, n) // where to resume scanning each partition
	for len(out) < limit && l.buffered > 0 {
		progress := false
		for i := 0; i < n && len(out) < limit; i++ {
			p := l.order[(l.rr+i)%n]
			part := l.parts[p]
			if part.frozen || (settle && l.maxInFlight > 0 && part.out >= l.maxInFlight) {
				continue
			}
			j := cursor[p]
			for j < len(part.entries) && part.entries[j].state != stateBuffered {
				j++
			}
			if j == len(part.entries) {
				cursor[p] = j
				continue
			}
			e := part.entries[j]
			cursor[p] = j + 1
			l.seq++
			e.state, e.expires, e.settle = stateLeased, now.Add(lease), settle
			if settle {
				part.out++
			}
			e.receipt = l.id + "." + strconv.FormatInt(int64(p), 10) + "." + strconv.FormatInt(e.offset, 10) + "." + strconv.FormatUint(l.seq, 36)
			l.leases[e.receipt] = e
			l.buffered--
			out = append(out, Leased{Partition: p, Offset: e.offset, Item: e.item, Receipt: e.receipt})
			progress = true
		}
		if !progress {
			break
		}
	}
	if n > 0 {
		l.rr = (l.rr + 1) % n
	}
	return out
}

// Ack marks leased records done and advances commit points over contiguous
// runs of done records. It returns the receipts it does not hold leased.
func (l *Ledger) Ack(receipts []string) (unknown []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	touched := map[int32]bool{}
	for _, r := range receipts {
		e, ok := l.leases[r]
		if !ok {
			unknown = append(unknown, r)
			continue
		}
		delete(l.leases, r)
		e.state = stateDone
		touched[e.partition] = true
	}
	for p := range touched {
		part := l.parts[p]
		i := 0
		for i < len(part.entries) && part.entries[i].state == stateDone {
			i++
		}
		if i > 0 {
			n := 0
			for _, e := range part.entries[:i] {
				if e.settle {
					n++
				}
			}
			part.commit = part.entries[i-1].offset + 1
			part.dirty = true
			part.marks = append(part.marks, commitMark{part.commit, n})
			// Drop the committed head in O(i), not by copying what is left:
			// appends reallocate the backing array as it fills.
			clear(part.entries[:i])
			part.entries = part.entries[i:]
		}
	}
	return unknown
}

// Release puts leased records back at the head of their partitions.
func (l *Ledger) Release(receipts []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	released := 0
	for _, r := range receipts {
		if e, ok := l.leases[r]; ok {
			delete(l.leases, r)
			l.unleaseLocked(e)
			released++
		}
	}
	l.buffered += released
	if released > 0 {
		l.signalLocked()
	}
}

// unleaseLocked puts a leased entry back to buffered; l.mu must be held.
func (l *Ledger) unleaseLocked(e *ledgerEntry) {
	if part := l.parts[e.partition]; part != nil && e.settle {
		part.out--
	}
	e.state, e.receipt, e.settle = stateBuffered, "", false
}

// Committed records that p's offsets below commit are durably committed, so
// the records they cover no longer count as in flight.
func (l *Ledger) Committed(p int32, commit int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil {
		return
	}
	i := 0
	for i < len(part.marks) && part.marks[i].commit <= commit {
		part.out -= part.marks[i].n
		i++
	}
	if i > 0 {
		part.marks = part.marks[i:]
		l.signalLocked() // serving may resume
	}
}

// Expire releases every lease that expired by now and returns how many.
func (l *Ledger) Expire(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for r, e := range l.leases {
		if now.After(e.expires) {
			delete(l.leases, r)
			l.unleaseLocked(e)
			n++
		}
	}
	l.buffered += n
	if n > 0 {
		l.signalLocked()
	}
	return n
}

// Freeze stops handing out records of p, ahead of its revocation: what is
// leased may still settle, nothing new leaves.
func (l *Ledger) Freeze(p int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil {
		part.frozen = true
	}
}

// Settling returns how many records of p are leased with settle set: the
// revoker waits for them before committing.
func (l *Ledger) Settling(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	if part := l.parts[p]; part != nil {
		for _, e := range part.entries {
			if e.state == stateLeased && e.settle {
				n++
			}
		}
	}
	return n
}

// Commits returns the commit points that moved since the last call.
func (l *Ledger) Commits() map[int32]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out map[int32]int64
	for p, part := range l.parts {
		if part.dirty {
			if out == nil {
				out = map[int32]int64{}
			}
			out[p] = part.commit
			part.dirty = false
		}
	}
	return out
}

// Redirty marks a commit point as not yet reported again, after a failed
// commit, unless it has moved on or p was revoked meanwhile.
func (l *Ledger) Redirty(p int32, commit int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil && part.commit == commit {
		part.dirty = true
	}
}

// String describes the ledger for logs and test failures.
func (l *Ledger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("ledger %s: %d partitions, %d buffered, %d leased", l.id, len(l.parts), l.buffered, len(l.leases))
}
