package kafkaclean_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/internal/kafkaclean"
)

func TestDeletePrefixedDeletesOnlyPrefixedTopics(t *testing.T) {
	all := []string{"a-answer", "a-query", "b-query", "xa-query"}
	tests := []struct {
		give []string
		want []string
	}{
		{give: nil, want: all},
		{give: []string{"c-"}, want: all},
		{give: []string{"a-"}, want: []string{"b-query", "xa-query"}},
		{give: []string{"b-", "xa-"}, want: []string{"a-answer", "a-query"}},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		brokers := fake(t)
		if _, err := admin(t, brokers).CreateTopics(ctx, 1, 1, nil, all...); err != nil {
			t.Fatalf("create topics: %v", err)
		}
		if err := kafkaclean.DeletePrefixed(ctx, admin(t, brokers), tt.give...); err != nil {
			t.Fatalf("DeletePrefixed(%q): %v", tt.give, err)
		}
		// A client of its own: kgo answers a repeated Metadata request
		// from its cache, which would still list the deleted topics.
		topics, err := admin(t, brokers).ListTopics(ctx)
		cancel()
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		got := topics.Names()
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("after DeletePrefixed(%q): topics %q, want %q", tt.give, got, tt.want)
		}
	}
}

func fake(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
