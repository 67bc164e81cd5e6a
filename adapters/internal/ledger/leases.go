package ledger

import "time"

// Take leases up to limit buffered records until now+lease, taking the
// oldest of each partition in turn so partitions are served fairly.
// settle marks leases the revoker should wait for (auto acknowledgement,
// which settles as soon as the response is written).
func (l *Ledger[T]) Take(limit int, now time.Time, lease time.Duration, settle bool) []Leased[T] {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Leased[T]
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
			e.receipt = l.issue(p, e.offset, l.seq)
			l.leases[e.receipt] = e
			l.buffered--
			out = append(out, Leased[T]{Partition: p, Offset: e.offset, Item: e.item, Receipt: e.receipt})
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

// WaitsForCommit reports whether a buffered record of a partition still
// being served waits only for a durable commit: its partition has
// maxInFlight auto-acknowledged records out beyond its last commit, so Take
// with settle skips it until Committed frees room (and signals Buffered's
// channel).
func (l *Ledger[T]) WaitsForCommit() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxInFlight <= 0 || l.buffered == 0 {
		return false
	}
	for _, part := range l.parts {
		if part.frozen || part.out < l.maxInFlight {
			continue
		}
		for _, e := range part.entries {
			if e.state == stateBuffered {
				return true
			}
		}
	}
	return false
}

// Ack marks leased records done and advances commit points over contiguous
// runs of done records. It returns the receipts it does not hold leased.
func (l *Ledger[T]) Ack(receipts []string) (unknown []string) {
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
		l.parts[p].advance()
	}
	return unknown
}

// advance moves the commit point over the run of done records at the head
// of the partition.
func (part *partition[T]) advance() {
	i := 0
	for i < len(part.entries) && part.entries[i].state == stateDone {
		i++
	}
	if i == 0 {
		return
	}
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

// Release puts leased records back at the head of their partitions.
func (l *Ledger[T]) Release(receipts []string) {
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
func (l *Ledger[T]) unleaseLocked(e *entry[T]) {
	if part := l.parts[e.partition]; part != nil && e.settle {
		part.out--
	}
	e.state, e.receipt, e.settle = stateBuffered, "", false
}

// Expire releases every lease that expired by now and returns how many.
func (l *Ledger[T]) Expire(now time.Time) int {
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

// Committed records that p's offsets below commit are durably committed, so
// the records they cover no longer count as in flight.
func (l *Ledger[T]) Committed(p int32, commit int64) {
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

// Commits returns the commit points that moved since the last call.
func (l *Ledger[T]) Commits() map[int32]int64 {
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
func (l *Ledger[T]) Redirty(p int32, commit int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if part := l.parts[p]; part != nil && part.commit == commit {
		part.dirty = true
	}
}
