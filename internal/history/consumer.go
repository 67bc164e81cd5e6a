package history

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Delivery is a record a consumer client was handed.
type Delivery struct {
	// Client names one sequential consumer (one loop of requests): the
	// order of its deliveries is the order it recorded them in.
	Client string
	ID     string // the message id it got, "" if it did not look
	Position
}

// Deliveries records what consumer clients were handed. The zero value is
// ready; it is safe for concurrent use.
type Deliveries struct {
	mu   sync.Mutex
	list []Delivery
}

// Add records a delivery; a client adds its deliveries in the order it got
// them.
func (d *Deliveries) Add(dl Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, dl)
}

// List returns a copy of the deliveries, in the order they were added.
func (d *Deliveries) List() []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Delivery(nil), d.list...)
}

// ConsumerReport is what CheckConsumer found.
type ConsumerReport struct {
	Scenario            string
	Records, Deliveries int
	// Missing: records never delivered. Unexpected: deliveries of a
	// position that holds no record, or another message than the record
	// there. Duplicated: deliveries beyond the first of a position.
	// Reordered: first deliveries of a position that a client got after
	// a later position of the same partition.
	Missing, Unexpected, Duplicated, Reordered int
	// Bound is the duplicates allowed per partition; MostInAPartition the
	// most one partition had; BeyondBound how many partitions had more
	// than Bound.
	Bound, MostInAPartition, BeyondBound int
	Examples                             []string
}

// Clean reports whether nothing is missing, unexpected or out of order and
// no partition has more duplicates than the bound.
func (r ConsumerReport) Clean() bool {
	return r.Missing+r.Unexpected+r.Reordered+r.BeyondBound == 0
}

func (r ConsumerReport) String() string {
	return fmt.Sprintf("%s: %d records, %d deliveries; missing %d, unexpected %d, reordered %d, duplicated %d (at most %d in a partition, %d allowed, %d partitions beyond)",
		r.Scenario, r.Records, r.Deliveries, r.Missing, r.Unexpected, r.Reordered,
		r.Duplicated, r.MostInAPartition, r.Bound, r.BeyondBound)
}

// Err is nil for a clean report, and otherwise says what was found, with
// examples.
func (r ConsumerReport) Err() error {
	if r.Clean() {
		return nil
	}
	return errors.New(r.String() + "\n  " + strings.Join(r.Examples, "\n  "))
}

// CheckConsumer judges deliveries against produced, everything the topics
// held at the end of the run (Reader.Read), allowing bound duplicates per
// partition (0: none; the consumer's KCHAT_CONSUMER_MAX_IN_FLIGHT after a
// kill -9).
func CheckConsumer(scenario string, produced []Record, deliveries []Delivery, bound int) ConsumerReport {
	rep := ConsumerReport{Scenario: scenario, Records: len(produced), Deliveries: len(deliveries), Bound: bound}
	var ex examples
	held := map[Position]string{}
	for _, r := range produced {
		held[r.Position] = r.ID
	}
	type clientPartition struct {
		client string
		tp     Position // offset 0
	}
	times := map[Position]int{}
	dups := map[Position]int{} // by topic and partition (offset 0)
	furthest := map[clientPartition]int64{}
	for _, d := range deliveries {
		id, ok := held[d.Position]
		if !ok || (d.ID != "" && d.ID != id) {
			rep.Unexpected++
			ex.add("unexpected", "%s at %s to %s: the topic holds %q there", d.ID, d.Position, d.Client, id)
			continue
		}
		tp := Position{Topic: d.Topic, Partition: d.Partition}
		if times[d.Position]++; times[d.Position] > 1 {
			rep.Duplicated++
			dups[tp]++
			continue
		}
		cp := clientPartition{d.Client, tp}
		if f, seen := furthest[cp]; seen && d.Offset < f {
			rep.Reordered++
			ex.add("reordered", "%s got %s after offset %d", d.Client, d.Position, f)
		}
		furthest[cp] = max(furthest[cp], d.Offset)
	}
	for _, r := range sortedRecords(produced) {
		if times[r.Position] == 0 {
			rep.Missing++
			ex.add("missing", "%s at %s: never delivered", r.ID, r.Position)
		}
	}
	for _, tp := range sortedPositions(dups) {
		n := dups[tp]
		rep.MostInAPartition = max(rep.MostInAPartition, n)
		if n > bound {
			rep.BeyondBound++
			ex.add("beyond the bound", "%s[%d]: %d duplicates, %d allowed", tp.Topic, tp.Partition, n, bound)
		}
	}
	rep.Examples = ex.list
	return rep
}

func sortedPositions(m map[Position]int) []Position {
	ps := make([]Position, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].less(ps[j]) })
	return ps
}
