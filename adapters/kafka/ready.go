package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchat/kchat/domain"
)

// ReadyTimeout bounds a readiness check: a broker that has not answered by
// then counts as down.
const ReadyTimeout = 2 * time.Second

// ping is every readiness check of this package: a metadata request for no
// topic, sent over the network to each broker cl knows (the seeds when it
// knows none yet, or when none of those answers) at once, within
// ReadyTimeout. It succeeds as soon as one broker answers, so one broker
// down or paused of several does not make a service unready.
//
// kadm's BrokerMetadata is not used: it answers from the client's metadata
// cache once the client has broker information, so it kept succeeding
// while every broker was down. kgo.Broker.Request writes the request to
// that broker's connection (dialling it if needed) and waits for the
// response, with no cache and no retry.
func ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	var errs []error
	for _, brokers := range [][]*kgo.Broker{cl.DiscoveredBrokers(), cl.SeedBrokers()} {
		if len(brokers) == 0 {
			continue
		}
		err := firstAnswer(ctx, brokers)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no broker to ask"))
	}
	return fmt.Errorf("kafka: no broker answered within %s: %w: %w", ReadyTimeout, domain.ErrUnavailable, errors.Join(errs...))
}

// firstAnswer asks every broker at once and returns nil on the first
// answer, or every broker's error.
func firstAnswer(ctx context.Context, brokers []*kgo.Broker) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the slower requests need not finish
	errs := make(chan error, len(brokers))
	for _, b := range brokers {
		go func() {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{} // no topic, not every topic
			_, err := b.Request(ctx, req)
			errs <- err
		}()
	}
	var all []error
	for range brokers {
		err := <-errs
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	return errors.Join(all...)
}
