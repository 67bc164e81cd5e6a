package llm_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/domain"
)

var passages = []domain.Passage{
	{Source: "consumer.md", Title: "Offsets", Text: "# Offsets\n\n" +
		"A consumer commits its offsets after processing each record. " +
		"Committed offsets survive a restart, e.g. after a deploy. " +
		"The weather in the data centre is irrelevant here.\n\n" +
		"```go\ncl.CommitRecords(ctx, recs...)\n```\n"},
	{Source: "topics.md", Title: "Retention", Text: "Topics keep records for 2 minutes by default. " +
		"Set `KCHAT_TOPIC_RETENTION` to change the retention, i.e. how long records stay.\n\n" +
		"- Partitions: 3 by default.\n- Replication factor: 1 in development."},
	{Source: "sessions.md", Title: "Sessions", Text: "Sessions live in Redis with a sliding time to live. " +
		"Each session belongs to the user who opened it."},
}

func generate(t *testing.T, g interface {
	Generate(context.Context, domain.Prompt, func(string)) (string, error)
}, p domain.Prompt,
) (string, []string) {
	t.Helper()
	var chunks []string
	got, err := g.Generate(context.Background(), p, func(s string) { chunks = append(chunks, s) })
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if strings.Join(chunks, "") != got {
		t.Fatalf("chunks %q do not make up the answer %q", chunks, got)
	}
	return got, chunks
}

func TestExtractivePicksRelevantSentences(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		want     []string // substrings, in this order
		wantNot  []string
		wantCite []string // markers, in order
	}{
		{
			name:     "retention",
			give:     "How long does a topic retain records?",
			want:     []string{"Topics keep records for 2 minutes by default. [2]"},
			wantNot:  []string{"weather", "Redis"},
			wantCite: []string{"[2]", "[2]"},
		},
		{
			// Most relevant first, not in passage order.
			name:    "offsets across a restart",
			give:    "Are committed offsets kept when the consumer restarts?",
			want:    []string{"Committed offsets survive a restart, e.g. after a deploy. [1]", "A consumer commits its offsets after processing each record. [1]"},
			wantNot: []string{"weather", "CommitRecords"},
		},

		{
			name: "code span",
			give: "What does KCHAT_TOPIC_RETENTION change?",
			want: []string{"Set `KCHAT_TOPIC_RETENTION` to change the retention, i.e. how long records stay. [2]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := generate(t, llm.NewExtractive(), domain.Prompt{Question: tt.give, Passages: passages})
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("answer %q lacks %q (after offset %d)", got, w, at)
				}
				at += i + len(w)
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("answer %q contains %q", got, w)
				}
			}
			if tt.wantCite != nil {
				cites := regexp.MustCompile(`\[\d+\]`).FindAllString(got, -1)
				if strings.Join(cites, ",") != strings.Join(tt.wantCite, ",") {
					t.Errorf("citations %v, want %v in %q", cites, tt.wantCite, got)
				}
			}
		})
	}
}

func TestExtractiveEverySentenceCited(t *testing.T) {
	got, chunks := generate(t, llm.NewExtractive(), domain.Prompt{
		Question: "How are offsets committed, and do committed offsets survive a consumer restart?",
		Passages: passages,
	})
	// Chunks are clauses: each ends a sentence with its [n] marker, or a
	// clause with its separator.
	marker := regexp.MustCompile(`\[[1-3]\] ?$`)
	clause := regexp.MustCompile(`[,;:] $`)
	sentences := 0
	for i, c := range chunks {
		switch {
		case marker.MatchString(c):
			sentences++
		case !clause.MatchString(c):
			t.Errorf("chunk %d %q ends neither a sentence with its [n] marker nor a clause", i, c)
		}
		if last := i == len(chunks)-1; last == strings.HasSuffix(c, " ") {
			t.Errorf("chunk %d %q: trailing space must separate chunks, not end the answer", i, c)
		}
	}
	if sentences < 2 || sentences > 3 || len(chunks) <= sentences {
		t.Fatalf("got chunks %q: %d sentences, want 2 or 3, cut in clauses", chunks, sentences)
	}
	if strings.HasSuffix(got, " ") {
		t.Errorf("answer %q ends in a space", got)
	}
}

func TestExtractiveDeterministic(t *testing.T) {
	p := domain.Prompt{Question: "How are records, offsets and sessions kept?", Passages: passages}
	first, _ := generate(t, llm.NewExtractive(), p)
	for range 50 {
		if got, _ := generate(t, llm.NewExtractive(), p); got != first {
			t.Fatalf("answers differ: %q then %q", first, got)
		}
	}
}

func TestExtractiveNoAnswer(t *testing.T) {
	tests := []struct {
		name string
		give domain.Prompt
	}{
		{"no passages", domain.Prompt{Question: "How long are records kept?"}},
		{"unrelated question", domain.Prompt{Question: "Who painted the Mona Lisa?", Passages: passages}},
		{"only stop words", domain.Prompt{Question: "What is it?", Passages: passages}},
		{"only code and headings", domain.Prompt{Question: "CommitRecords offsets?", Passages: []domain.Passage{
			{Text: "# Offsets\n```\nCommitRecords(offsets)\n```"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, chunks := generate(t, llm.NewExtractive(), tt.give)
			if got != llm.NoAnswer {
				t.Errorf("got %q, want NoAnswer", got)
			}
			if len(chunks) != 1 {
				t.Errorf("got chunks %q, want the answer in one", chunks)
			}
		})
	}
}

// A passage of code samples is answered from its comments, the code left
// out; consecutive comment lines read as one paragraph.
func TestExtractiveQuotesCodeComments(t *testing.T) {
	code := "```rust\n// Get and test the `Equipment` union\n// (`equipped` field).\nlet w = monster.equipped_as_weapon();\n```\n\n" +
		"```sh\n# Build the weapon table first.\nflatc --rust monster.fbs\n```"
	got, _ := generate(t, llm.NewExtractive(), domain.Prompt{
		Question: "How do I read which weapon the monster has equipped?",
		Passages: []domain.Passage{{Source: "tutorial.md", Text: code}},
	})
	if !strings.HasPrefix(got, "Get and test the `Equipment` union (`equipped` field). [1]") || strings.Contains(got, "let w") {
		t.Errorf("got %q, want the comment quoted, not the code", got)
	}
}

func TestExtractiveNilOnChunk(t *testing.T) {
	got, err := llm.NewExtractive().Generate(context.Background(), domain.Prompt{Question: "retention", Passages: passages}, nil)
	if err != nil || !strings.Contains(got, "[2]") {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestExtractiveEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := llm.NewExtractive().Generate(ctx, domain.Prompt{Question: "retention", Passages: passages}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestExtractiveBoundsLongPassages(t *testing.T) {
	long := strings.Repeat("Retention keeps records around for a while and then deletes them ", 40) // one run-on sentence
	var many strings.Builder
	for range 50 {
		many.WriteString("Records retention matters for every topic partition. Retention deletes old records. ")
	}
	got, _ := generate(t, llm.NewExtractive(), domain.Prompt{
		Question: "How does retention delete records?",
		Passages: []domain.Passage{{Text: long}, {Text: many.String()}, {Text: long + ". " + long}},
	})
	if len(got) > 600 {
		t.Errorf("answer has %d bytes, want at most 600: %q", len(got), got)
	}
	if !strings.Contains(got, "[") {
		t.Errorf("answer %q cites nothing", got)
	}
}

func TestExtractiveSplitsSentences(t *testing.T) {
	// Each passage holds one matching sentence; the answer must quote it
	// whole, not cut at an abbreviation, a version or a code span.
	tests := []struct {
		give string
		want string
	}{
		{"Brokers, e.g. Redpanda, speak Kafka. Unrelated text follows.", "Brokers, e.g. Redpanda, speak Kafka. [1]"},
		{"Use franz-go v1.22.3 for brokers now. Unrelated text follows.", "Use franz-go v1.22.3 for brokers now. [1]"},
		{"Call `brokers.Ping(). Then` to check brokers. Unrelated text follows.", "Call `brokers.Ping(). Then` to check brokers. [1]"},
		{"Dr. Smith configures brokers. Unrelated text follows.", "Dr. Smith configures brokers. [1]"},
		{"## Brokers\n1. List brokers in order.\n2. Unrelated text follows.", "List brokers in order. [1]"},
		{"| Setting | Brokers |\n|---|---|\n| x | y |", "Setting | Brokers [1]"},
	}
	for _, tt := range tests {
		got, _ := generate(t, llm.NewExtractive(), domain.Prompt{Question: "brokers", Passages: []domain.Passage{{Text: tt.give}}})
		if got != tt.want {
			t.Errorf("from %q got %q, want %q", tt.give, got, tt.want)
		}
	}
}

// The answer streams a clause at a time, Pace apart, and the pieces make it
// up exactly.
func TestExtractiveStreamsClausesAtItsPace(t *testing.T) {
	p := domain.Prompt{Question: "brokers", Passages: []domain.Passage{{Text: "Brokers, e.g. Redpanda, speak Kafka; clients: franz-go. Unrelated text follows."}}}
	g := &llm.Extractive{Pace: 20 * time.Millisecond}
	var at []time.Time
	var chunks []string
	start := time.Now()
	got, err := g.Generate(context.Background(), p, func(c string) { chunks, at = append(chunks, c), append(at, time.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Brokers, ", "e.g. Redpanda, ", "speak Kafka; ", "clients: ", "franz-go. [1]"}
	if strings.Join(chunks, "") != got || !slices.Equal(chunks, want) {
		t.Fatalf("chunks %q for %q, want %q", chunks, got, want)
	}
	if first := at[0].Sub(start); first > 15*time.Millisecond {
		t.Errorf("first piece after %s, want at once", first)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 20*time.Millisecond {
			t.Errorf("piece %d came %s after the one before, want the 20 ms pace", i, gap)
		}
	}
}
