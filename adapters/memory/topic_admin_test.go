package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports/porttest"
)

func TestBrokerTopicAdminContract(t *testing.T) {
	porttest.RunTopicAdmin(t, func(t *testing.T) porttest.TopicAdminHarness {
		prefix := fmt.Sprintf("ta%d.", prefixes.Add(1))
		b := memory.NewBroker(prefix)
		return porttest.TopicAdminHarness{
			Admin:  b,
			Prefix: prefix,
			// A publish creates a topic; the broker has no settings to vary,
			// so what stays the same is the message in it.
			Precreate: func(t *testing.T, typ domain.MessageType) domain.TopicInfo {
				t.Helper()
				msg := domain.Message{MessageID: "m-1", SessionID: "s", UserID: "u", Type: typ, Text: "kept", CreatedAt: time.Now()}
				if _, err := b.Publish(t.Context(), msg); err != nil {
					t.Fatal(err)
				}
				name := domain.TopicName(prefix, typ)
				t.Cleanup(func() {
					n := 0
					for _, part := range b.Messages(name) {
						n += len(part)
					}
					if n != 1 {
						t.Errorf("the existing topic %s holds %d messages after EnsureTopics, want its 1", name, n)
					}
				})
				return domain.TopicInfo{
					Type: typ, Name: name, Partitions: memory.DefaultPartitions, ReplicationFactor: 1,
					Retention: 2 * time.Minute, CleanupPolicy: "delete",
				}
			},
		}
	})
}
