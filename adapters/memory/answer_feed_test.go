package memory_test

import (
	"fmt"
	"testing"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

func TestAnswerFeedContract(t *testing.T) {
	porttest.RunAnswerFeed(t, func(t *testing.T) porttest.AnswerFeedHarness {
		b := memory.NewBroker(fmt.Sprintf("af%d.", prefixes.Add(1)))
		return porttest.AnswerFeedHarness{
			Feed: memory.NewAnswerFeed(b),
			Commit: func(t *testing.T, msgs ...domain.Message) {
				t.Helper()
				for _, r := range b.PublishBatch(t.Context(), msgs) {
					if r.Err != nil {
						t.Fatal(r.Err)
					}
				}
			},
			Start: func(*testing.T) ports.AnswerFeed { return memory.NewAnswerFeed(b) },
		}
	})
}
