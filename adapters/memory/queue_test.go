package memory_test

import (
	"fmt"
	"testing"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

// receiptKey is the receipt key of every test queue.
var receiptKey = []byte("memory-test-receipt-key-32-bytes")

func TestQueueContract(t *testing.T) {
	porttest.RunQueue(t, func(t *testing.T) porttest.QueueHarness {
		b := memory.NewBroker(fmt.Sprintf("q%d.", prefixes.Add(1)))
		return porttest.QueueHarness{
			Queue: memory.NewQueue(b, "g", receiptKey),
			Publish: func(t *testing.T, msgs ...domain.Message) {
				t.Helper()
				for _, m := range msgs {
					if _, err := b.Publish(t.Context(), m); err != nil {
						t.Fatal(err)
					}
				}
			},
			Restart:    func(*testing.T) ports.MessageQueue { return memory.NewQueue(b, "g", receiptKey) },
			OtherGroup: func(*testing.T) ports.MessageQueue { return memory.NewQueue(b, "other", receiptKey) },
		}
	})
}
