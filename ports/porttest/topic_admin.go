package porttest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// TopicAdminHarness is one topic admin under test, on a store where none of
// its topics exist yet, with a way to create a topic behind its back.
type TopicAdminHarness struct {
	Admin ports.TopicAdmin
	// Prefix is the topic prefix the admin manages.
	Prefix string
	// Precreate creates typ's topic as an operator might have, without the
	// admin (with settings the admin would not choose, where the store has
	// any), and returns it as the store describes it.
	Precreate func(t *testing.T, typ domain.MessageType) domain.TopicInfo
}

// RunTopicAdmin runs the ports.TopicAdmin contract.
func RunTopicAdmin(t *testing.T, newHarness func(t *testing.T) TopicAdminHarness) {
	t.Run("describing before the topics exist is not found", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if infos, err := h.Admin.DescribeTopics(context.Background()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("DescribeTopics on an empty store = %+v, %v; want domain.ErrNotFound", infos, err)
		}
	})

	t.Run("ensure creates the three topics, described in pipeline order", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ensure(t, h.Admin)
		checkPipelineTopics(t, h.Prefix, describe(t, h.Admin))
	})

	t.Run("ensure is idempotent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ensure(t, h.Admin)
		first := describe(t, h.Admin)
		for i := range 2 {
			ensure(t, h.Admin)
			if again := describe(t, h.Admin); !reflect.DeepEqual(again, first) {
				t.Fatalf("after EnsureTopics #%d the topics are %+v, were %+v", i+2, again, first)
			}
		}
	})

	t.Run("concurrent ensures all succeed and agree", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const callers = 8
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { errs[i] = h.Admin.EnsureTopics(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent EnsureTopics #%d = %v; another caller creating the topic first is no failure", i, err)
			}
		}
		checkPipelineTopics(t, h.Prefix, describe(t, h.Admin))
	})

	t.Run("ensure leaves an existing topic as it is and creates the others", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		existing := h.Precreate(t, domain.TypeQuery)
		if _, err := h.Admin.DescribeTopics(context.Background()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("DescribeTopics with only the query topic = %v, want domain.ErrNotFound", err)
		}
		ensure(t, h.Admin)
		infos := describe(t, h.Admin)
		checkPipelineTopics(t, h.Prefix, infos)
		if got := infos[0]; got != existing {
			t.Fatalf("the existing query topic is now %+v, was %+v", got, existing)
		}
	})
}

func ensure(t *testing.T, a ports.TopicAdmin) {
	t.Helper()
	if err := a.EnsureTopics(context.Background()); err != nil {
		t.Fatalf("EnsureTopics = %v", err)
	}
}

func describe(t *testing.T, a ports.TopicAdmin) []domain.TopicInfo {
	t.Helper()
	infos, err := a.DescribeTopics(context.Background())
	if err != nil {
		t.Fatalf("DescribeTopics = %v", err)
	}
	return infos
}

// checkPipelineTopics checks that infos are the query, prompt and answer
// topics under prefix, in that order, each with usable settings.
func checkPipelineTopics(t *testing.T, prefix string, infos []domain.TopicInfo) {
	t.Helper()
	if len(infos) != len(domain.MessageTypes) {
		t.Fatalf("DescribeTopics returned %d topics, want %d: %+v", len(infos), len(domain.MessageTypes), infos)
	}
	for i, typ := range domain.MessageTypes {
		got := infos[i]
		if got.Type != typ || got.Name != domain.TopicName(prefix, typ) {
			t.Errorf("topic #%d is %s %q, want %s %q", i, got.Type, got.Name, typ, domain.TopicName(prefix, typ))
		}
		if got.Partitions < 1 || got.ReplicationFactor < 1 || got.Retention <= 0 || got.CleanupPolicy == "" {
			t.Errorf("topic %s: %+v; want at least one partition and replica, a retention and a cleanup policy", got.Name, got)
		}
	}
}
