// Package kafkaclean is Kafka topic housekeeping shared by the test kit
// (internal/kafkatest) and the benchmark harness (cmd/kbench): a binary
// must not import the test kit, and the two must not each keep a copy.
package kafkaclean

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// DeletePrefixed deletes every topic whose name starts with one of the
// prefixes.
func DeletePrefixed(ctx context.Context, adm *kadm.Client, prefixes ...string) error {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var mine []string
	for _, name := range topics.Names() {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				mine = append(mine, name)
				break
			}
		}
	}
	if len(mine) == 0 {
		return nil
	}
	if _, err := adm.DeleteTopics(ctx, mine...); err != nil {
		return fmt.Errorf("delete %v: %w", mine, err)
	}
	return nil
}
