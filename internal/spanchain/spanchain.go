// Package spanchain checks, in tests, that one question's spans form the
// chain docs/design.md ("Tracing") promises, whichever backend (an
// in-memory exporter, Jaeger's query API) the spans were read from.
package spanchain

import (
	"fmt"
	"strings"
)

// Span is what the check needs of a span.
type Span struct {
	TraceID, SpanID, ParentID string
	Name, Service             string
}

// Step names a span of the chain: its name ends with Suffix (Kafka spans
// are named after their prefixed topic) and, when Service is set, a
// process of that service made it.
type Step struct {
	Suffix  string
	Service string
}

// Question is the chain of a question asked over WebSocket, in order:
// each step is an ancestor of the next (other spans, such as a fetch's
// receive span, may sit between).
func Question(gateway, answerer string) []Step {
	return []Step{
		{"ws receive query", gateway},
		{"query publish", ""},
		{"retrieve", answerer},
		{"prompt publish", answerer},
		{"generate", answerer},
		{"answer publish", answerer},
		{"answer feed deliver", gateway},
		{"ws write answer", gateway},
	}
}

// GeneratorCall is the generator's call, a child of the generate stage.
func GeneratorCall(answerer string) []Step {
	return []Step{{"generate", answerer}, {"generator call", answerer}}
}

// Check reports how spans fail to hold chain, or nil. All of chain's
// spans must share one trace.
func Check(spans []Span, chain []Step) error {
	byID := map[string]Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var found []Span
	for i, st := range chain {
		var cands []Span
		for _, s := range spans {
			if strings.HasSuffix(s.Name, st.Suffix) && (st.Service == "" || s.Service == st.Service) {
				cands = append(cands, s)
			}
		}
		if len(cands) == 0 {
			return fmt.Errorf("no span %q (service %q) among %d: %s", st.Suffix, st.Service, len(spans), names(spans))
		}
		if i == 0 {
			if len(cands) != 1 {
				return fmt.Errorf("%d spans %q, want the one of the question", len(cands), st.Suffix)
			}
			found = append(found, cands[0])
			continue
		}
		prev := found[i-1]
		var next *Span
		for _, c := range cands {
			if ancestor(byID, prev.SpanID, c) {
				next = &c
				break
			}
		}
		if next == nil {
			return fmt.Errorf("no span %q descends from %q (%s): spans %s", st.Suffix, prev.Name, prev.SpanID, names(spans))
		}
		if next.TraceID != found[0].TraceID {
			return fmt.Errorf("span %q is in trace %s, the question's is %s", next.Name, next.TraceID, found[0].TraceID)
		}
		found = append(found, *next)
	}
	return nil
}

// ancestor reports whether the span id is an ancestor of s.
func ancestor(byID map[string]Span, id string, s Span) bool {
	for seen := 0; s.ParentID != "" && seen < len(byID); seen++ {
		if s.ParentID == id {
			return true
		}
		p, ok := byID[s.ParentID]
		if !ok {
			return false
		}
		s = p
	}
	return false
}

func names(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s/%s %q (%s) parent %s", s.TraceID[:min(8, len(s.TraceID))], s.SpanID, s.Name, s.Service, s.ParentID)
	}
	return b.String()
}
