package memory_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports/porttest"
)

var prefixes atomic.Int64

func TestBrokerPublisherContract(t *testing.T) {
	porttest.RunPublisher(t, func(t *testing.T) porttest.PublisherHarness {
		prefix := fmt.Sprintf("t%d.", prefixes.Add(1))
		b := memory.NewBroker(prefix)
		return porttest.PublisherHarness{
			Publisher: b,
			Prefix:    prefix,
			Read: func(t *testing.T, topic string, want int) []porttest.Stored {
				t.Helper()
				var out []porttest.Stored
				for p, msgs := range b.Messages(topic) {
					for off, m := range msgs {
						out = append(out, porttest.Stored{
							Position: domain.Position{Topic: topic, Partition: int32(p), Offset: int64(off)},
							Key:      m.SessionID,
							Message:  m,
						})
					}
				}
				if len(out) < want {
					t.Fatalf("topic %s holds %d messages, want %d", topic, len(out), want)
				}
				return out
			},
		}
	})
}

func TestBrokerTopics(t *testing.T) {
	b := memory.NewBroker("x.")
	if _, err := b.DescribeTopics(t.Context()); err == nil {
		t.Fatal("DescribeTopics before EnsureTopics succeeded, want ErrNotFound")
	}
	if err := b.EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	infos, err := b.DescribeTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range domain.MessageTypes {
		if infos[i].Name != "x."+string(typ) || infos[i].Partitions != 3 {
			t.Errorf("topic %d = %+v", i, infos[i])
		}
	}
}
