package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kchat/kchat/domain"
)

// d is a delta of question q: attempt a, seq n.
func d(q string, a int64, n int) domain.Delta {
	return domain.Delta{ReplyTo: q, Attempt: a, Seq: n, Text: fmt.Sprintf("%s/%d/%d", q, a, n)}
}

func TestDeltaOrder(t *testing.T) {
	end := domain.Delta{Text: "END"} // stands for the final answer of q
	tests := []struct {
		name string
		give []domain.Delta
		want string // the texts passed on
	}{
		{"in order", []domain.Delta{d("q", 1, 0), d("q", 1, 1), d("q", 1, 2)}, "q/1/0 q/1/1 q/1/2"},
		{"a gap stops the attempt", []domain.Delta{d("q", 1, 0), d("q", 1, 2), d("q", 1, 3), d("q", 1, 1)}, "q/1/0"},
		{"a duplicate is not a gap", []domain.Delta{d("q", 1, 0), d("q", 1, 1), d("q", 1, 1), d("q", 1, 2)}, "q/1/0 q/1/1 q/1/2"},
		{"joined mid-stream: nothing of that attempt", []domain.Delta{d("q", 1, 3), d("q", 1, 4), d("q", 1, 5)}, ""},
		{"a greater attempt restarts", []domain.Delta{d("q", 1, 0), d("q", 1, 1), d("q", 2, 0), d("q", 2, 1)}, "q/1/0 q/1/1 q/2/0 q/2/1"},
		{"an older attempt after a greater one is dropped", []domain.Delta{d("q", 2, 0), d("q", 1, 0), d("q", 1, 1), d("q", 2, 1)}, "q/2/0 q/2/1"},
		{"the old attempt's tail never mixes in", []domain.Delta{d("q", 1, 0), d("q", 2, 0), d("q", 1, 1), d("q", 2, 1)}, "q/1/0 q/2/0 q/2/1"},
		{"a greater attempt joined mid-stream stops it too", []domain.Delta{d("q", 1, 0), d("q", 2, 1), d("q", 1, 1), d("q", 2, 2)}, "q/1/0"},
		{"after a stop, a greater attempt's seq 0 starts again", []domain.Delta{d("q", 1, 0), d("q", 1, 2), d("q", 2, 0), d("q", 2, 1)}, "q/1/0 q/2/0 q/2/1"},
		{"the same attempt's seq 0 does not restart", []domain.Delta{d("q", 1, 0), d("q", 1, 1), d("q", 1, 0), d("q", 1, 2)}, "q/1/0 q/1/1 q/1/2"},
		{"replies are independent", []domain.Delta{d("q", 1, 0), d("r", 1, 0), d("q", 1, 1), d("r", 1, 2), d("q", 1, 2)}, "q/1/0 r/1/0 q/1/1 q/1/2"},
		{"the final answer ends the state", []domain.Delta{d("q", 1, 0), d("q", 1, 2), end, d("q", 1, 0)}, "q/1/0 q/1/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o deltaOrder
			var got []string
			for _, x := range tt.give {
				if x == end {
					o.end("q")
					continue
				}
				if o.admit(x) {
					got = append(got, x.Text)
				}
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("passed on %q, want %q", s, tt.want)
			}
		})
	}
}
