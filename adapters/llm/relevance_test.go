package llm_test

import (
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/domain"
)

// Passages of the embedded knowledge base, as the retriever returned them
// for the questions of issue 21, point 2.
var (
	kafkaDown = domain.Passage{Source: "troubleshooting.md", Title: "Troubleshooting › Kafka is down", Text: "When Kafka is down, services keep running and `/readyz` answers 503 until the broker is back.\n" +
		"Services reconnect on their own when Kafka comes back; no restart is needed.\n" +
		"If Kafka is down at startup, the services still start and create their topics as soon as the broker answers.\n" +
		"While Kafka is down, the producer answers 503 and the WebSocket chat answers questions with the error code `unavailable`."}
	topicsAtStartup = domain.Passage{Source: "producer.md", Title: "Producer API › Topics at startup", Text: "At startup, every service that writes to Kafka creates the topics `query`, `prompt` and `answer` if they are missing.\n" +
		"An existing topic is never changed; when its partitions, retention or cleanup policy differ, the service logs a warning.\n" +
		"If Kafka is down at startup, the producer starts anyway with `/readyz` answering 503, creates the topics as soon as the broker answers and then serves without a restart."}
	compose = domain.Passage{Source: "running.md", Title: "Running kchat › Docker Compose", Text: "Run `docker compose up --build` to start Apache Kafka (KRaft mode, no ZooKeeper), Redis and the kchat services in containers.\n" +
		"All kchat services are built from the one `Dockerfile` in the repository.\n" +
		"Each service waits for Kafka to be healthy before it starts, and each has a health check on `/readyz`."}
	configuration = domain.Passage{Source: "configuration.md", Title: "Configuration", Text: "kchat is configured only with environment variables whose names start with `KCHAT_`.\n" +
		"Every variable is read once at startup and validated."}
	makeRun = domain.Passage{Source: "running.md", Title: "Running kchat › Start kchat on your machine", Text: "Run `make run` to start every kchat service in one process; it needs nothing but Go installed.\n" +
		"`make run` starts the all-in-one binary `cmd/kchat` and prints the URL of each service."}
	wsIntro = domain.Passage{Source: "websocket.md", Title: "WebSocket chat protocol", Text: "The gateway (port 8002) serves the WebSocket chat at `GET /ws`.\n" +
		"Every frame is a JSON text frame with a `type` field."}
)

// Each sentence quoted answers the question by itself; the most relevant
// comes first, and the passage whose heading matches is preferred.
func TestExtractiveQuotesOnlyRelevantSentences(t *testing.T) {
	for _, tt := range []struct {
		name    string
		give    domain.Prompt
		lead    string // the answer's first sentence
		wantNot []string
	}{
		{
			name:    "a sentence sharing only Kafka and start is left out",
			give:    domain.Prompt{Question: "What happens if Kafka is down when the producer starts?", Passages: []domain.Passage{kafkaDown, topicsAtStartup, compose}},
			lead:    "If Kafka is down at startup, the producer starts anyway",
			wantNot: []string{"docker compose", "Dockerfile"},
		},
		{
			name:    "the heading that matches leads",
			give:    domain.Prompt{Question: "How do I start kchat?", Passages: []domain.Passage{compose, configuration, makeRun}},
			lead:    "Run `make run` to start every kchat service",
			wantNot: []string{"configured only with environment variables"},
		},
		{
			// The follow-up is read with the question it follows up on.
			name: "a follow-up",
			give: domain.Prompt{
				Question: "And what does the WebSocket chat do then?",
				History:  []domain.Turn{{Role: domain.RoleUser, Text: "What happens if Kafka is down when the producer starts?"}},
				Passages: []domain.Passage{wsIntro, kafkaDown},
			},
			lead:    "While Kafka is down, the producer answers 503 and the WebSocket chat answers questions with the error code `unavailable`. [2]",
			wantNot: []string{"JSON text frame"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := generate(t, llm.NewExtractive(), tt.give)
			if !strings.HasPrefix(got, tt.lead) {
				t.Errorf("answer %q does not lead with %q", got, tt.lead)
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("answer %q quotes %q", got, w)
				}
			}
		})
	}
}

// A word the question uses for what the passages call otherwise
// (adapters/internal/thesaurus) still finds its sentence.
func TestExtractiveReadsSynonyms(t *testing.T) {
	p := domain.Prompt{Question: "Can I plug in a local LLM?", Passages: []domain.Passage{
		{Source: "answerer.md", Title: "Answerer › The openai generator", Text: "The `openai` generator sends the prompt to any OpenAI-compatible endpoint, such as Ollama."},
		{Source: "running.md", Title: "Running kchat", Text: "Run `make run` locally to start kchat."},
	}}
	got, _ := generate(t, llm.NewExtractive(), p)
	if !strings.HasPrefix(got, "The `openai` generator sends the prompt") {
		t.Errorf("answer %q does not lead with the openai generator", got)
	}
}
