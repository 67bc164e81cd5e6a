package kafka

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
)

// The lag is exported under the groups the stages really join.
func TestStageGroupIsTheStagesGroup(t *testing.T) {
	scfg := StageConfig{Group: "kchat-answerer", Instance: "a1"}
	for _, name := range []string{"retrieve", "generate"} {
		s := NewStage(name, domain.TypeQuery, DefaultConfig(), scfg, slog.New(slog.DiscardHandler), NewMetrics(nil), nil)
		if got := StageGroup(scfg, name); got != s.group {
			t.Errorf("StageGroup(%q) = %q, the stage joins %q", name, got, s.group)
		}
	}
}

// records counts what a read_committed reader gets between a commit and
// the end: the records read in the range, plus the offsets past what was
// read.
func TestLagRecords(t *testing.T) {
	recs := func(offsets ...int64) []*kgo.Record {
		out := make([]*kgo.Record, len(offsets))
		for i, o := range offsets {
			out[i] = &kgo.Record{Offset: o}
		}
		return out
	}
	tests := []struct {
		name           string
		recs           []*kgo.Record
		next, from, to int64
		want           int64
	}{
		{"a marker only", nil, 4, 3, 4, 0},
		{"records and markers, read to the end", recs(0, 1, 6), 8, 0, 8, 3},
		{"a later group's range of the same read", recs(0, 1, 6), 8, 2, 8, 1},
		{"read stopped short: the rest counted by offsets", recs(10, 11), 12, 10, 20, 10},
		{"read past the end listed earlier", recs(3, 4, 5), 6, 3, 5, 2},
	}
	for _, tt := range tests {
		if got := records(tt.recs, tt.next, tt.from, tt.to); got != tt.want {
			t.Errorf("%s: records = %d, want %d", tt.name, got, tt.want)
		}
	}
}
