package ledger

import (
	"slices"
	"strconv"
	"strings"
)

// A partition's committed offset stops at its oldest record not yet done,
// so the member that takes a partition over would serve again the records
// done after it (acknowledged out of order, say a lease held while later
// ones were acknowledged). Handover gives the revoker those offsets to
// carry with its last commit (the Kafka queue puts them in the commit's
// metadata), and Skip gives them to the next owner, which counts them done
// when it fetches them (docs/design.md, "Consumer").

// Handover returns where p's committed offset should be (its commit point,
// or the offset of its oldest record when nothing is done yet) and the
// offsets done beyond it, oldest first; ok is false when p holds nothing
// to hand over. Call it before Revoke.
func (l *Ledger[T]) Handover(p int32) (commit int64, done []int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil || (part.commit < 0 && len(part.entries) == 0 && len(part.skip) == 0) {
		return 0, nil, false
	}
	commit = part.commit
	if len(part.entries) > 0 && commit < 0 {
		commit = part.entries[0].offset
	}
	if commit < 0 {
		// Nothing fetched yet: the commit stays where the earlier owner
		// left it, with its offsets handed on.
		commit = part.skipFrom
	}
	for _, e := range part.entries {
		if e.state == stateDone {
			done = append(done, e.offset)
		}
	}
	// Offsets an earlier owner handed over that were not fetched yet go on
	// to the next owner.
	for o := range part.skip {
		if o >= commit {
			done = append(done, o)
		}
	}
	slices.Sort(done)
	return commit, slices.Compact(done), true
}

// Skip records that p's records at offsets were acknowledged under an
// earlier owner, whose commit left p at from: fetched, they are done at
// once, and the commit point moves over them. It applies to p while it
// stays assigned under epoch.
func (l *Ledger[T]) Skip(p int32, epoch uint64, from int64, offsets []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[p]
	if part == nil || part.epoch != epoch || len(offsets) == 0 {
		return
	}
	if part.skip == nil {
		part.skip = make(map[int64]bool, len(offsets))
	}
	part.skipFrom = from
	for _, o := range offsets {
		part.skip[o] = true
	}
}

// handoverPrefix marks commit metadata written by EncodeDone.
const handoverPrefix = "kchat-done:"

// EncodeDone writes offsets (ascending) as commit metadata, in ranges
// ("kchat-done:105-107,110"), at most max bytes: offsets that do not fit
// are left out (they would be served again, never lost).
func EncodeDone(offsets []int64, max int) string {
	if len(offsets) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(handoverPrefix)
	for i := 0; i < len(offsets); {
		j := i
		for j+1 < len(offsets) && offsets[j+1] == offsets[j]+1 {
			j++
		}
		part := strconv.FormatInt(offsets[i], 10)
		if j > i {
			part += "-" + strconv.FormatInt(offsets[j], 10)
		}
		if i > 0 {
			part = "," + part
		}
		if b.Len()+len(part) > max {
			break
		}
		b.WriteString(part)
		i = j + 1
	}
	return b.String()
}

// DecodeDone reads what EncodeDone wrote; other metadata (another
// client's, or none) gives nothing. Offsets below from are dropped.
func DecodeDone(meta string, from int64) []int64 {
	rest, ok := strings.CutPrefix(meta, handoverPrefix)
	if !ok || rest == "" {
		return nil
	}
	var out []int64
	for _, r := range strings.Split(rest, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 64); err != nil || b < a || b-a > 1<<20 {
				return nil
			}
		}
		for o := max(a, from); o <= b; o++ {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
