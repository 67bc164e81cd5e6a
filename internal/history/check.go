package history

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// maxExamples is how many instances of each anomaly a report names.
const maxExamples = 5

// Report is what Check found in one scenario.
type Report struct {
	Scenario string
	// Operations by outcome; Unknown counts the pending ones too, and
	// UnknownLanded those of them whose message is in the topics.
	Invoked, OK, Fail, Unknown, UnknownLanded int
	Records                                   int // records read
	// Anomalies. Lost: message ids acknowledged and absent. Unexpected:
	// records whose id was never invoked, or only by operations that
	// failed for certain. Duplicated: records beyond the first of their id.
	// Reordered: acknowledged operations found before one of their key that
	// was acknowledged before they were invoked. Misplaced: acknowledged
	// operations whose id is in the topics but not where the
	// acknowledgement said.
	Lost, Unexpected, Duplicated, Reordered, Misplaced int
	// Slowest is the longest time an operation took to complete.
	Slowest time.Duration
	// Examples names the first few instances of each anomaly.
	Examples []string
}

// Clean reports whether no anomaly was found.
func (r Report) Clean() bool {
	return r.Lost+r.Unexpected+r.Duplicated+r.Reordered+r.Misplaced == 0
}

func (r Report) String() string {
	return fmt.Sprintf("%s: %d invoked, %d ok, %d fail, %d unknown (%d landed); %d records; lost %d, unexpected %d, duplicated %d, reordered %d, misplaced %d; slowest %s",
		r.Scenario, r.Invoked, r.OK, r.Fail, r.Unknown, r.UnknownLanded, r.Records,
		r.Lost, r.Unexpected, r.Duplicated, r.Reordered, r.Misplaced, r.Slowest.Round(time.Millisecond))
}

// Err is nil for a clean report, and otherwise says what was found, with
// examples.
func (r Report) Err() error {
	if r.Clean() {
		return nil
	}
	return errors.New(r.String() + "\n  " + strings.Join(r.Examples, "\n  "))
}

func (p Position) String() string {
	return fmt.Sprintf("%s[%d]@%d", p.Topic, p.Partition, p.Offset)
}

// examples collects up to maxExamples instances per kind of anomaly.
type examples struct {
	list  []string
	count map[string]int
}

func (e *examples) add(kind, format string, args ...any) {
	if e.count == nil {
		e.count = map[string]int{}
	}
	if e.count[kind]++; e.count[kind] <= maxExamples {
		e.list = append(e.list, kind+" "+fmt.Sprintf(format, args...))
	}
}

// Check judges the history against recs, everything the scenario's topics
// held at the end of the run (Reader.Read).
func Check(h *History, recs []Record) Report {
	ops := h.Ops()
	rep := Report{Scenario: h.Scenario(), Invoked: len(ops), Records: len(recs)}
	var ex examples

	recs = sortedRecords(recs)
	found := map[string][]Position{} // message id → where, in topic, partition, offset order
	at := map[Position]string{}
	for _, r := range recs {
		found[r.ID] = append(found[r.ID], r.Position)
		at[r.Position] = r.ID
	}
	sent := map[string]bool{} // ids of operations that may have written: ok, unknown, pending
	acked := map[string]bool{}
	for _, op := range ops {
		switch op.Outcome {
		case OK:
			rep.OK++
			acked[op.ID] = true
		case Fail:
			rep.Fail++
			continue
		default:
			rep.Unknown++
			if len(found[op.ID]) > 0 {
				rep.UnknownLanded++
			}
		}
		sent[op.ID] = true
		if op.Completed != 0 {
			rep.Slowest = max(rep.Slowest, op.CompletedAt.Sub(op.InvokedAt))
		}
		if op.Outcome == OK && op.Placed && len(found[op.ID]) > 0 && at[op.At] != op.ID {
			rep.Misplaced++
			ex.add("misplaced", "%s: acknowledged at %s, found at %v", op.ID, op.At, found[op.ID])
		}
	}
	for _, id := range sortedKeys(acked) {
		if len(found[id]) == 0 {
			rep.Lost++
			ex.add("lost", "%s: acknowledged, not in the topics", id)
		}
	}
	for _, r := range recs {
		if !sent[r.ID] {
			rep.Unexpected++
			ex.add("unexpected", "%s at %s: %s", r.ID, r.Position, unexpectedWhy(ops, r.ID))
		}
	}
	for _, id := range sortedKeys(found) {
		if ps := found[id]; id != "" && len(ps) > 1 {
			rep.Duplicated += len(ps) - 1
			ex.add("duplicated", "%s: %d times, at %v", id, len(ps), ps)
		}
	}
	rep.Reordered = reordered(ops, found, &ex)
	rep.Examples = ex.list
	return rep
}

func unexpectedWhy(ops []Op, id string) string {
	if id == "" {
		return "no message id"
	}
	for _, op := range ops {
		if op.ID == id {
			return "its operations failed for certain (" + op.Reason + ")"
		}
	}
	return "never invoked"
}

// reordered counts the acknowledged operations found in a partition before
// an operation of their key that was acknowledged before they were invoked.
// Per key, it walks the operations in the order they were invoked, keeping
// the furthest position of those already acknowledged at that moment.
func reordered(ops []Op, found map[string][]Position, ex *examples) int {
	byKey := map[string][]Op{}
	for _, op := range ops {
		if op.Outcome == OK && op.Key != "" && len(found[op.ID]) > 0 {
			byKey[op.Key] = append(byKey[op.Key], op)
		}
	}
	n := 0
	for _, key := range sortedKeys(byKey) {
		invoked := byKey[key]
		sort.Slice(invoked, func(i, j int) bool { return invoked[i].Invoked < invoked[j].Invoked })
		completed := append([]Op(nil), invoked...)
		sort.Slice(completed, func(i, j int) bool { return completed[i].Completed < completed[j].Completed })
		type furthest struct {
			id  string
			pos Position
		}
		before := map[Position]furthest{} // by topic and partition (offset 0): the furthest acknowledged so far
		j := 0
		for _, b := range invoked {
			for ; j < len(completed) && completed[j].Completed < b.Invoked; j++ {
				a := completed[j]
				pa := found[a.ID][0]
				tp := Position{Topic: pa.Topic, Partition: pa.Partition}
				if f, ok := before[tp]; !ok || pa.Offset > f.pos.Offset {
					before[tp] = furthest{a.ID, pa}
				}
			}
			pb := found[b.ID][0]
			if f, ok := before[Position{Topic: pb.Topic, Partition: pb.Partition}]; ok && f.pos.Offset > pb.Offset {
				n++
				ex.add("reordered", "key %s: %s, sent after %s was acknowledged, is at %s, before it at %s", key, b.ID, f.id, pb, f.pos)
			}
		}
	}
	return n
}

func sortedRecords(recs []Record) []Record {
	recs = append([]Record(nil), recs...)
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].less(recs[j].Position) })
	return recs
}

func (p Position) less(q Position) bool {
	if p.Topic != q.Topic {
		return p.Topic < q.Topic
	}
	if p.Partition != q.Partition {
		return p.Partition < q.Partition
	}
	return p.Offset < q.Offset
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
