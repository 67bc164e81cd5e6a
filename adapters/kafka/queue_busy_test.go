package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

func TestNoEmptyAnswerWhileMessagesWaitKfake(t *testing.T) {
	t.Parallel()
	testNoEmptyAnswerWhileMessagesWait(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationNoEmptyAnswerWhileMessagesWait(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-busy")
	testNoEmptyAnswerWhileMessagesWait(t, kafkatest.Real(t, prefix), prefix)
}

// testNoEmptyAnswerWhileMessagesWait is issue 15's client loop: 8 callers
// in parallel take one query each, without waiting, and acknowledge it at
// once (ack=auto, as a written response does), over 3 partitions. Commits
// lag behind such callers, and each partition may have only
// KCHAT_CONSUMER_MAX_IN_FLIGHT delivered messages beyond its last commit;
// still no call may answer "none" while the topic provably holds a message
// no caller took: the takes counted so far plus one uncounted take per
// other caller (limit 1) fall short of what was published.
func testNoEmptyAnswerWhileMessagesWait(t *testing.T, brokers []string, prefix string) {
	const (
		total     = 1200 // 400 a partition, within a partition's buffer (500)
		callers   = 8
		perCaller = 100 // 800 calls: messages wait for every one of them
	)
	h := queueHarness(t, brokers, prefix)
	msgs := make([]domain.Message, total)
	for i := range msgs {
		msgs[i] = domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%60), UserID: "u", Type: domain.TypeQuery, Text: fmt.Sprintf("q%d", i)}
	}
	h.Publish(t, msgs...)

	var taken, calls, empty atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	parts := map[int32]int{}
	var slowest atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range perCaller {
				start := time.Now()
				b, err := h.Queue.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 1, Lease: 30 * time.Second, AutoAck: true})
				calls.Add(1)
				if took := int64(time.Since(start)); took > slowest.Load() {
					slowest.Store(took) // racy max, good enough for a log line
				}
				if err != nil {
					t.Error(err)
					return
				}
				if len(b.Deliveries) == 0 {
					if taken.Load()+callers-1 < total {
						empty.Add(1)
					}
					continue
				}
				d := b.Deliveries[0]
				taken.Add(1)
				mu.Lock()
				if seen[d.Message.MessageID] {
					t.Errorf("%s served twice", d.Message.MessageID)
				}
				seen[d.Message.MessageID] = true
				parts[d.Partition]++
				mu.Unlock()
				if err := h.Queue.Ack(context.Background(), []string{d.Receipt}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls, %d served (by partition %v), %d empty while messages waited; slowest call %s",
		calls.Load(), taken.Load(), parts, empty.Load(), time.Duration(slowest.Load()).Round(time.Microsecond))
	if len(parts) != 3 {
		t.Fatalf("served from partitions %v, want all 3", parts)
	}
	if n := empty.Load(); n > 0 {
		t.Errorf("%d of %d calls answered none while messages waited", n, calls.Load())
	}
}
