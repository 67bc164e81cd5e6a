package history

import (
	"reflect"
	"strings"
	"testing"
)

func got(client, id string, p, o int) Delivery {
	return Delivery{Client: client, ID: id, Position: pos(p, o)}
}

// Each kind of consumer anomaly, alone, is found, and nothing else is;
// duplicates are judged against the bound per partition.
func TestCheckConsumerFindsExactlyEachAnomaly(t *testing.T) {
	produced := []Record{rec("a", 0, 0), rec("b", 0, 1), rec("c", 0, 2), rec("x", 1, 0), rec("y", 1, 1)}
	all := []Delivery{got("c1", "a", 0, 0), got("c1", "b", 0, 1), got("c1", "c", 0, 2), got("c1", "x", 1, 0), got("c1", "y", 1, 1)}
	tests := []struct {
		name  string
		give  []Delivery
		bound int
		want  ConsumerReport // counts only
		clean bool
	}{
		{
			name: "clean",
			give: all,
			want: ConsumerReport{Records: 5, Deliveries: 5}, clean: true,
		},
		{
			name: "missing",
			give: []Delivery{all[0], all[2], all[3], all[4]},
			want: ConsumerReport{Records: 5, Deliveries: 4, Missing: 1},
		},
		{
			name: "unexpected: a position that holds no record",
			give: append(all[:5:5], got("c1", "z", 0, 3)),
			want: ConsumerReport{Records: 5, Deliveries: 6, Unexpected: 1},
		},
		{
			name: "unexpected: another message than the record there",
			give: []Delivery{all[0], got("c1", "not-b", 0, 1), all[2], all[3], all[4]},
			want: ConsumerReport{Records: 5, Deliveries: 5, Unexpected: 1, Missing: 1},
		},
		{
			name: "reordered within a partition",
			give: []Delivery{all[0], all[2], all[1], all[3], all[4]},
			want: ConsumerReport{Records: 5, Deliveries: 5, Reordered: 1},
		},
		{
			name: "partitions interleave freely",
			give: []Delivery{all[3], all[0], all[4], all[1], all[2]},
			want: ConsumerReport{Records: 5, Deliveries: 5}, clean: true,
		},
		{
			name: "order is per client: concurrent clients record in their own order",
			give: []Delivery{got("c1", "a", 0, 0), got("c2", "c", 0, 2), got("c1", "b", 0, 1), all[3], all[4]},
			want: ConsumerReport{Records: 5, Deliveries: 5}, clean: true,
		},
		{
			name: "duplicates none allowed",
			give: append(all[:5:5], got("c2", "b", 0, 1)),
			want: ConsumerReport{Records: 5, Deliveries: 6, Duplicated: 1, MostInAPartition: 1, BeyondBound: 1},
		},
		{
			name:  "duplicates within the bound: redelivered from the last commit after a kill",
			give:  append(all[:5:5], got("c2", "b", 0, 1), got("c2", "c", 0, 2), got("c2", "y", 1, 1)),
			bound: 2,
			want:  ConsumerReport{Records: 5, Deliveries: 8, Duplicated: 3, MostInAPartition: 2, Bound: 2}, clean: true,
		},
		{
			name:  "duplicates beyond the bound in one partition",
			give:  append(all[:5:5], got("c2", "a", 0, 0), got("c2", "b", 0, 1), got("c2", "c", 0, 2), got("c2", "y", 1, 1)),
			bound: 2,
			want:  ConsumerReport{Records: 5, Deliveries: 9, Duplicated: 4, MostInAPartition: 3, Bound: 2, BeyondBound: 1},
		},
		{
			name:  "the same record delivered three times is two duplicates",
			give:  append(all[:5:5], got("c1", "a", 0, 0), got("c2", "a", 0, 0)),
			bound: 1,
			want:  ConsumerReport{Records: 5, Deliveries: 7, Duplicated: 2, MostInAPartition: 2, Bound: 1, BeyondBound: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := CheckConsumer("synthetic", produced, tt.give, tt.bound)
			examples := rep.Examples
			rep.Scenario, rep.Examples = "", nil
			if !reflect.DeepEqual(rep, tt.want) {
				t.Fatalf("got  %+v\nwant %+v\nexamples: %q", rep, tt.want, examples)
			}
			if rep.Clean() != tt.clean || (rep.Err() == nil) != tt.clean {
				t.Fatalf("clean %v, err %v; want clean %v", rep.Clean(), rep.Err(), tt.clean)
			}
		})
	}
}

func TestConsumerReportIsOneLine(t *testing.T) {
	var d Deliveries
	d.Add(got("c1", "a", 0, 0))
	d.Add(got("c1", "a", 0, 0))
	rep := CheckConsumer("kill -9", []Record{rec("a", 0, 0), rec("b", 0, 1)}, d.List(), 0)
	want := "kill -9: 2 records, 2 deliveries; missing 1, unexpected 0, reordered 0, duplicated 1 (at most 1 in a partition, 0 allowed, 1 partitions beyond)"
	if rep.String() != want {
		t.Fatalf("String() = %q\nwant       %q", rep.String(), want)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "missing b at q[0]@1: never delivered") ||
		!strings.Contains(err.Error(), "beyond the bound q[0]: 1 duplicates, 0 allowed") {
		t.Fatalf("Err() = %v", err)
	}
}
