package llm_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/ports/porttest"
)

func TestExtractiveGeneratorContract(t *testing.T) {
	porttest.RunGenerator(t, func(*testing.T) porttest.GeneratorHarness {
		return porttest.GeneratorHarness{Generator: llm.NewExtractive()}
	})
}

func TestOpenAIGeneratorContract(t *testing.T) {
	porttest.RunGenerator(t, func(t *testing.T) porttest.GeneratorHarness {
		return porttest.GeneratorHarness{
			Generator: openAIOn(t, citingModel{}),
			Down:      newOpenAI(t, &chatServer{status: http.StatusServiceUnavailable, body: `{"error":{"message":"overloaded"}}`}, nil),
		}
	})
}

// openAIOn is newOpenAI for any handler.
func openAIOn(t *testing.T, h http.Handler) *llm.OpenAI {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	cfg := llm.DefaultConfig()
	cfg.Generator, cfg.BaseURL, cfg.Model = llm.GeneratorOpenAI, ts.URL+"/v1", "test-model"
	g, err := llm.NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return g
}

// citingModel is a fake model that does as the instructions say: it finds
// the passage listed with the answer, streams the answer citing that
// passage's number as the prompt gave it, and says the knowledge base does
// not cover the question when no passage has the answer. Its answer thus
// depends on how the generator numbered the passages it sent.
type citingModel struct{}

// listed matches a passage line of the rendered question: "[n] (label) text".
var listed = regexp.MustCompile(`(?m)^\[(\d+)\] \(.*$`)

func (citingModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var req struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(raw, &req)
	question := ""
	if n := len(req.Messages); n > 0 {
		question = req.Messages[n-1].Content
	}
	deltas := []string{"The knowledge base ", "does not cover that."}
	for _, m := range listed.FindAllStringSubmatch(question, -1) {
		if strings.Contains(m[0], "2 minutes") {
			deltas = []string{"Topics keep records ", "for 2 minutes", " [" + m[1] + "]."}
		}
	}
	(&chatServer{deltas: deltas}).ServeHTTP(w, r)
}
