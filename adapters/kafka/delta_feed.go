package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// DeltaFeed reads the stream topic (the deltas of answers being generated,
// docs/design.md, "Streaming answers") as this process's own reader, like
// AnswerFeed: no consumer group, so every gateway replica sees every
// delta, from where the topic ended when the feed started. Unlike it, at
// read_uncommitted: deltas ride no transaction, and waiting for one would
// defeat them. A record that is not a delta is logged and skipped.
type DeltaFeed struct {
	feedReader[domain.Delta]
}

var _ ports.DeltaFeed = (*DeltaFeed)(nil)

// NewDeltaFeed creates the feed's client; Run pins the start and reads.
//
// With a router it reads the same partitions of the stream topic as the
// answer feed of the answer topic: deltas follow their answers' routing.
func NewDeltaFeed(cfg Config, log *slog.Logger, metrics *Metrics, router *Router) (*DeltaFeed, error) {
	fcfg := cfg
	fcfg.ClientID = cfg.ClientID + "-delta-feed"
	cl, err := NewClient(fcfg, log, metrics.client("delta-feed"),
		// For a topic that appears after the feed started.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// A delta is worth its latency: do not wait to fill a fetch.
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	decode := func(r *kgo.Record) (domain.Delta, error) {
		d, err := decodeDelta(r.Value)
		if err == nil {
			d.Trace = recordTrace(r, false)
		}
		return d, err
	}
	f := &DeltaFeed{newFeedReader(cl, domain.StreamTopicName(cfg.TopicPrefix), "delta feed", decode, log, metrics.tracer())}
	if router != nil {
		f.routeBy(router)
	}
	return f, nil
}

var errNotDelta = errors.New("not a version 1 delta naming its question and session")

// decodeDelta reads a stream record's value (wire.Delta). Whether the
// delta is the answerer's is its subscriber's to check (the signature).
func decodeDelta(value []byte) (domain.Delta, error) {
	var w wire.Delta
	if err := json.Unmarshal(value, &w); err != nil {
		return domain.Delta{}, fmt.Errorf("%w: %w", errNotDelta, err)
	}
	if w.V != 1 || w.ReplyTo == "" || w.SessionID == "" || w.Attempt < 0 || w.Seq < 0 {
		return domain.Delta{}, errNotDelta
	}
	return w.Domain(), nil
}
