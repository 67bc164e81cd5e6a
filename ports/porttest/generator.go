package porttest

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// GeneratorHarness is one generator under test.
type GeneratorHarness struct {
	// Generator answers the suite's prompts. The suite's questions are each
	// answered by one of their passages, in plain words, so a generator that
	// quotes (or a fake model that cites what it is shown) can cite it.
	Generator ports.Generator
	// Down is a generator of the same kind whose model does not answer; nil
	// when the generator needs no model (then it never fails that way).
	Down ports.Generator
}

// Passages the suite's prompts are built from; retention answers the
// question in generatorPrompt.
var (
	offsetsPassage = domain.Passage{Source: "consumer.md", Title: "Offsets", Score: 2.5,
		Text: "A consumer commits its offsets after processing each record. Committed offsets survive a restart."}
	retentionPassage = domain.Passage{Source: "topics.md", Title: "Retention", Score: 3.1,
		Text: "Topics keep records for 2 minutes by default. Set KCHAT_TOPIC_RETENTION to change how long topics keep records."}
	sessionsPassage = domain.Passage{Source: "sessions.md", Title: "Sessions", Score: 1.2,
		Text: "Sessions live in Redis with a sliding time to live. Each session belongs to the user who opened it."}
)

// generatorPrompt asks what the retention passage answers, among passages.
func generatorPrompt(passages ...domain.Passage) domain.Prompt {
	return domain.Prompt{
		Question: "How long do topics keep records?",
		History: []domain.Turn{
			{Role: domain.RoleUser, MessageID: "q-0", Text: "Hi"},
			{Role: domain.RoleAssistant, MessageID: "a-0", Text: "Hello! Ask me about kchat."},
		},
		Passages: passages,
	}
}

// RunGenerator runs the ports.Generator contract.
func RunGenerator(t *testing.T, newHarness func(t *testing.T) GeneratorHarness) {
	t.Run("the answer cites only passages of the prompt", func(t *testing.T) {
		tests := []struct {
			name     string
			give     domain.Prompt
			wantCite bool
		}{
			{"one passage", generatorPrompt(retentionPassage), true},
			{"the answer in the middle of three", generatorPrompt(offsetsPassage, retentionPassage, sessionsPassage), true},
			{"the answer last of three", generatorPrompt(sessionsPassage, offsetsPassage, retentionPassage), true},
			{"no passages", generatorPrompt(), false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				answer, err := h.Generator.Generate(context.Background(), tt.give, nil)
				if err != nil {
					t.Fatalf("Generate = %v", err)
				}
				cited := checkCitations(t, answer, tt.give)
				if tt.wantCite && len(cited) == 0 {
					t.Fatalf("answer %q cites none of the passages, though one answers the question", answer)
				}
			})
		}
	})

	t.Run("a bracketed number in a passage is not passed off as a citation", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		// Knowledge-base Markdown has footnotes and reference links: quoted
		// as they are, their numbers would point at other passages or none.
		footnoted := retentionPassage
		footnoted.Text = "Topics keep records for 2 minutes by default [7]. Set KCHAT_TOPIC_RETENTION to change how long topics keep records [2]."
		p := generatorPrompt(footnoted)
		answer, err := h.Generator.Generate(context.Background(), p, nil)
		if err != nil {
			t.Fatalf("Generate = %v", err)
		}
		if cited := checkCitations(t, answer, p); len(cited) == 0 {
			t.Fatalf("answer %q cites no passage", answer)
		}
	})

	t.Run("the streamed pieces make up the answer, in order, before it returns", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		p := generatorPrompt(offsetsPassage, retentionPassage, sessionsPassage)
		var (
			mu       sync.Mutex
			pieces   []string
			returned atomic.Bool
			late     atomic.Int32
		)
		answer, err := h.Generator.Generate(context.Background(), p, func(s string) {
			if returned.Load() {
				late.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			pieces = append(pieces, s)
		})
		returned.Store(true)
		if err != nil {
			t.Fatalf("Generate = %v", err)
		}
		time.Sleep(50 * time.Millisecond) // room for a straggling piece to show
		mu.Lock()
		defer mu.Unlock()
		if len(pieces) == 0 {
			t.Fatalf("onChunk was never called for the answer %q", answer)
		}
		if got := strings.Join(pieces, ""); got != answer {
			t.Fatalf("pieces %q make %q, not the answer %q", pieces, got, answer)
		}
		if n := late.Load(); n > 0 {
			t.Fatalf("onChunk was called %d times after Generate returned", n)
		}
		checkCitations(t, answer, p)
	})

	t.Run("a nil onChunk still answers", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		p := generatorPrompt(offsetsPassage, retentionPassage)
		answer, err := h.Generator.Generate(context.Background(), p, nil)
		if err != nil {
			t.Fatalf("Generate with a nil onChunk = %v", err)
		}
		if len(checkCitations(t, answer, p)) == 0 {
			t.Fatalf("answer %q cites no passage", answer)
		}
	})

	t.Run("a ctx that already ended fails with its error and streams nothing", func(t *testing.T) {
		tests := []struct {
			name string
			give func() (context.Context, context.CancelFunc)
			want error
		}{
			{"cancelled", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			}, context.Canceled},
			{"past its deadline", func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			}, context.DeadlineExceeded},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				ctx, cancel := tt.give()
				defer cancel()
				var pieces atomic.Int32
				answer, err := h.Generator.Generate(ctx, generatorPrompt(retentionPassage), func(string) { pieces.Add(1) })
				if !errors.Is(err, tt.want) {
					t.Fatalf("Generate = %q, %v; want %v", answer, err, tt.want)
				}
				if errors.Is(err, domain.ErrUnavailable) {
					t.Fatalf("Generate = %v: the caller's ctx ended, the model did not fail", err)
				}
				if n := pieces.Load(); n > 0 {
					t.Fatalf("onChunk was called %d times for a ctx that had ended", n)
				}
			})
		}
	})

	t.Run("concurrent calls each get their own answer", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		// Prompts of one, two and three passages: an answer or a piece that
		// strayed into another call would cite a passage its prompt lacks.
		prompts := []domain.Prompt{
			generatorPrompt(retentionPassage),
			generatorPrompt(offsetsPassage, retentionPassage),
			generatorPrompt(sessionsPassage, offsetsPassage, retentionPassage),
		}
		const calls = 12
		answers, streamed, errs := make([]string, calls), make([]string, calls), make([]error, calls)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				var b strings.Builder
				answers[i], errs[i] = h.Generator.Generate(context.Background(), prompts[i%len(prompts)], func(s string) { b.WriteString(s) })
				streamed[i] = b.String()
			})
		}
		wg.Wait()
		for i := range calls {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if streamed[i] != answers[i] {
				t.Fatalf("call %d streamed %q but answered %q", i, streamed[i], answers[i])
			}
			if len(checkCitations(t, answers[i], prompts[i%len(prompts)])) == 0 {
				t.Fatalf("call %d: answer %q cites no passage", i, answers[i])
			}
		}
	})

	t.Run("a model that does not answer is unavailable", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.Down == nil {
			t.Skip("this generator needs no model")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		answer, err := h.Down.Generate(ctx, generatorPrompt(retentionPassage), nil)
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("Generate without a model = %q, %v; want domain.ErrUnavailable", answer, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("Generate without a model took the caller's whole 30s")
		}
	})
}

// citation is a [n] marker.
var citation = regexp.MustCompile(`\[(\d+)\]`)

// checkCitations checks that answer is not blank and that each [n] in it
// names a passage of p, and returns the numbers cited.
func checkCitations(t *testing.T, answer string, p domain.Prompt) []int {
	t.Helper()
	if strings.TrimSpace(answer) == "" {
		t.Fatalf("the answer is blank")
	}
	var cited []int
	for _, m := range citation.FindAllStringSubmatch(answer, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 || n > len(p.Passages) {
			t.Fatalf("answer %q cites %s, but the prompt has %d passages", answer, m[0], len(p.Passages))
		}
		cited = append(cited, n)
	}
	return cited
}
