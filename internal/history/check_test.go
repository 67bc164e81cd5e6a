package history

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// step is one event of a synthetic history: invoke an operation (by message
// id) or complete it.
type step struct {
	invoke string // message id to invoke
	key    string
	end    string // message id to complete
	as     Outcome
	at     *Position
}

func inv(id, key string) step          { return step{invoke: id, key: key} }
func ok(id string) step                { return step{end: id, as: OK} }
func okAt(id string, p Position) step  { return step{end: id, as: OK, at: &p} }
func fail(id string) step              { return step{end: id, as: Fail} }
func unknown(id string) step           { return step{end: id, as: Unknown} }
func rec(id string, p, o int) Record   { return Record{Position: pos(p, o), ID: id} }
func pos(p, o int) Position            { return Position{Topic: "q", Partition: int32(p), Offset: int64(o)} }
func seq(ids ...string) (steps []step) { return sent("k", ids...) }

// sent invokes and acknowledges each id in turn, under key.
func sent(key string, ids ...string) (steps []step) {
	for _, id := range ids {
		steps = append(steps, inv(id, key), ok(id))
	}
	return steps
}

func play(steps []step) *History {
	h := New("synthetic")
	handles := map[string]Handle{}
	for _, s := range steps {
		if s.invoke != "" {
			handles[s.invoke] = h.Invoke(Send{ID: s.invoke, Key: s.key})
			continue
		}
		if s.at != nil {
			h.OKAt(handles[s.end], *s.at)
			continue
		}
		h.Complete(handles[s.end], s.as, s.as.String())
	}
	return h
}

// Each kind of anomaly, alone in a history, is found, and nothing else is.
func TestCheckFindsExactlyEachAnomaly(t *testing.T) {
	tests := []struct {
		name string
		give []step
		recs []Record
		want Report // counts only
	}{
		{
			name: "clean",
			give: seq("a", "b", "c"),
			recs: []Record{rec("a", 0, 0), rec("b", 0, 1), rec("c", 0, 2)},
			want: Report{Invoked: 3, OK: 3, Records: 3},
		},
		{
			name: "lost: acknowledged, absent",
			give: seq("a", "b"),
			recs: []Record{rec("a", 0, 0)},
			want: Report{Invoked: 2, OK: 2, Records: 1, Lost: 1},
		},
		{
			name: "unexpected: never invoked",
			give: seq("a"),
			recs: []Record{rec("a", 0, 0), rec("z", 0, 1)},
			want: Report{Invoked: 1, OK: 1, Records: 2, Unexpected: 1},
		},
		{
			name: "unexpected: a failed operation landed",
			give: []step{inv("a", "k"), fail("a")},
			recs: []Record{rec("a", 0, 0)},
			want: Report{Invoked: 1, Fail: 1, Records: 1, Unexpected: 1},
		},
		{
			name: "a failed operation that did not land is fine",
			give: []step{inv("a", "k"), fail("a")},
			want: Report{Invoked: 1, Fail: 1},
		},
		{
			name: "unexpected: a record without a message id",
			give: seq("a"),
			recs: []Record{rec("a", 0, 0), rec("", 0, 1)},
			want: Report{Invoked: 1, OK: 1, Records: 2, Unexpected: 1},
		},
		{
			name: "duplicated",
			give: seq("a", "b"),
			recs: []Record{rec("a", 0, 0), rec("b", 0, 1), rec("a", 0, 2)},
			want: Report{Invoked: 2, OK: 2, Records: 3, Duplicated: 1},
		},
		{
			name: "duplicated across partitions, three times",
			give: seq("a"),
			recs: []Record{rec("a", 0, 0), rec("a", 1, 0), rec("a", 2, 5)},
			want: Report{Invoked: 1, OK: 1, Records: 3, Duplicated: 2},
		},
		{
			name: "reordered: b sent after a was acknowledged, found before it",
			give: seq("a", "b"),
			recs: []Record{rec("b", 0, 0), rec("a", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2, Reordered: 1},
		},
		{
			name: "concurrent operations may land in either order",
			give: []step{inv("a", "k"), inv("b", "k"), ok("b"), ok("a")},
			recs: []Record{rec("b", 0, 0), rec("a", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2},
		},
		{
			name: "operations that overlap in time are concurrent, whichever completes first",
			give: []step{inv("a", "k"), inv("b", "k"), ok("a"), ok("b")},
			recs: []Record{rec("b", 0, 0), rec("a", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2},
		},
		{
			name: "order is per key",
			give: append(sent("k1", "a"), sent("k2", "b")...),
			recs: []Record{rec("b", 0, 0), rec("a", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2},
		},
		{
			name: "order is per partition",
			give: seq("a", "b"),
			recs: []Record{rec("a", 1, 7), rec("b", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2},
		},
		{
			name: "reordered: each operation found before an earlier acknowledged one counts",
			give: seq("a", "b", "c", "d"),
			recs: []Record{rec("a", 0, 0), rec("c", 0, 1), rec("d", 0, 2), rec("b", 0, 3)},
			want: Report{Invoked: 4, OK: 4, Records: 4, Reordered: 2},
		},
		{
			name: "unknown that landed",
			give: []step{inv("a", "k"), ok("a"), inv("u", "k"), unknown("u")},
			recs: []Record{rec("a", 0, 0), rec("u", 0, 1)},
			want: Report{Invoked: 2, OK: 1, Unknown: 1, UnknownLanded: 1, Records: 2},
		},
		{
			name: "unknown that did not land",
			give: []step{inv("a", "k"), ok("a"), inv("u", "k"), unknown("u")},
			recs: []Record{rec("a", 0, 0)},
			want: Report{Invoked: 2, OK: 1, Unknown: 1, Records: 1},
		},
		{
			name: "pending at the end of the run counts as unknown",
			give: []step{inv("p", "k")},
			recs: []Record{rec("p", 0, 0)},
			want: Report{Invoked: 1, Unknown: 1, UnknownLanded: 1, Records: 1},
		},
		{
			name: "misplaced: found, but not where acknowledged",
			give: []step{inv("a", "k"), okAt("a", pos(0, 5))},
			recs: []Record{rec("a", 0, 0)},
			want: Report{Invoked: 1, OK: 1, Records: 1, Misplaced: 1},
		},
		{
			name: "acknowledged positions that hold the record",
			give: []step{inv("a", "k"), okAt("a", pos(0, 0)), inv("b", "k"), okAt("b", pos(0, 1))},
			recs: []Record{rec("a", 0, 0), rec("b", 0, 1)},
			want: Report{Invoked: 2, OK: 2, Records: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(play(tt.give), tt.recs)
			examples := got.Examples
			got.Scenario, got.Slowest, got.Examples = "", 0, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v\nexamples: %q", got, tt.want, examples)
			}
			if got.Clean() != (len(examples) == 0) {
				t.Fatalf("clean %v with examples %q", got.Clean(), examples)
			}
		})
	}
}

// Reordering is found among many concurrent-looking operations too: the
// sweep compares each operation with everything acknowledged before it was
// invoked, not only its neighbour.
func TestCheckFindsAReorderFarBack(t *testing.T) {
	var steps []step
	var recs []Record
	for i := range 100 {
		id := fmt.Sprint("m", i)
		steps = append(steps, inv(id, "k"), ok(id))
		recs = append(recs, rec(id, 0, i+1))
	}
	recs = append(recs, rec("late", 0, 0)) // sent last, found first
	steps = append(steps, inv("late", "k"), ok("late"))
	rep := Check(play(steps), recs)
	if rep.Reordered != 1 || !strings.Contains(rep.Err().Error(), "late, sent after m99 was acknowledged, is at q[0]@0, before it at q[0]@100") {
		t.Fatalf("got %v", rep.Err())
	}
}

func TestReportIsOneLineAndErrNamesExamples(t *testing.T) {
	rep := Check(play(seq("a", "b")), []Record{rec("b", 0, 0), rec("b", 0, 1)})
	s := rep.String()
	if strings.Contains(s, "\n") || !strings.HasPrefix(s, "synthetic: 2 invoked, 2 ok, 0 fail, 0 unknown (0 landed); 2 records; lost 1, unexpected 0, duplicated 1, reordered 0, misplaced 0") {
		t.Fatalf("String() = %q", s)
	}
	err := rep.Err()
	if err == nil || !strings.Contains(err.Error(), "lost a: acknowledged, not in the topics") || !strings.Contains(err.Error(), "duplicated b: 2 times") {
		t.Fatalf("Err() = %v", err)
	}
	if Check(play(seq("a")), []Record{rec("a", 0, 0)}).Err() != nil {
		t.Fatal("a clean report has an error")
	}
}

func TestHTTPOutcome(t *testing.T) {
	tests := []struct {
		give int
		err  error
		want Outcome
	}{
		{202, nil, OK},
		{200, nil, OK},
		{400, nil, Fail},
		{413, nil, Fail},
		{429, nil, Fail},
		{503, nil, Unknown},
		{500, nil, Unknown},
		{0, errors.New("context deadline exceeded"), Unknown},
		{0, errors.New("connection refused"), Unknown},
	}
	for _, tt := range tests {
		if got := HTTPOutcome(tt.give, tt.err); got != tt.want {
			t.Errorf("HTTPOutcome(%d, %v) = %s, want %s", tt.give, tt.err, got, tt.want)
		}
	}
}

// Concurrent clients record into one history; every event gets its own
// place in the order, and an operation's completion follows its invocation.
func TestHistoryRecordsConcurrently(t *testing.T) {
	h := New("concurrent")
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			for i := range 500 {
				op := h.Invoke(Send{ID: fmt.Sprintf("%d-%d", c, i), Key: fmt.Sprint(c)})
				switch i % 3 {
				case 0:
					h.OKAt(op, Position{Topic: "q", Partition: int32(c), Offset: int64(i)})
				case 1:
					h.Fail(op, "400")
				default:
					h.Unknown(op, "503")
				}
			}
		})
	}
	wg.Wait()
	ops := h.Ops()
	seen := map[int64]bool{}
	for _, op := range ops {
		if op.Completed <= op.Invoked || seen[op.Invoked] || seen[op.Completed] {
			t.Fatalf("operation %s: invoked %d, completed %d (or shares a tick)", op.ID, op.Invoked, op.Completed)
		}
		seen[op.Invoked], seen[op.Completed] = true, true
	}
	rep := Check(h, nil)
	if rep.Invoked != 8000 || rep.OK != 16*167 || rep.Fail != 16*167 || rep.Unknown != 16*166 || rep.Lost != 16*167 {
		t.Fatalf("got %s", rep)
	}
}

// Recording costs one short lock per event, from any number of clients.
func BenchmarkRecord(b *testing.B) {
	h := New("bench")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.OK(h.Invoke(Send{ID: "m", Key: "k"}))
		}
	})
}

// Checking a run the size of the hand-run kill -9 (75,150 operations over
// 16 keys) takes a fraction of a second.
func BenchmarkCheck(b *testing.B) {
	h := New("bench")
	var recs []Record
	for i := range 75150 {
		id, key := fmt.Sprint("m", i), fmt.Sprint("s", i%16)
		h.OKAt(h.Invoke(Send{ID: id, Key: key}), Position{Topic: "q", Partition: int32(i % 16), Offset: int64(i / 16)})
		recs = append(recs, Record{Position: Position{Topic: "q", Partition: int32(i % 16), Offset: int64(i / 16)}, ID: id})
	}
	b.ResetTimer()
	for range b.N {
		if rep := Check(h, recs); !rep.Clean() {
			b.Fatal(rep.Err())
		}
	}
}
