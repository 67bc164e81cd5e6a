// Package testenv finds the real services (Kafka, Redis) that integration
// tests run against. Without them a test is skipped, except under CI, where a
// missing service fails the run: CI must never pass by skipping.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// Variables that point tests at real services (printed by make services-up).
const (
	KafkaVar = "KCHAT_TEST_KAFKA_BROKERS"
	RedisVar = "KCHAT_TEST_REDIS_URL"
	// ServicesScriptVar is the path of scripts/services.sh, for tests that
	// stop and restart the real broker.
	ServicesScriptVar = "KCHAT_TEST_SERVICES_SCRIPT"
	// ClusterVar points fault tests at the 3-broker cluster (printed by
	// make cluster-up).
	ClusterVar = "KCHAT_TEST_CLUSTER_BROKERS"
)

// TB is the part of testing.TB this package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// KafkaBrokers returns the real brokers, or skips (fails under CI) when
// KCHAT_TEST_KAFKA_BROKERS is not set.
func KafkaBrokers(t TB) []string {
	t.Helper()
	return strings.Split(require(t, KafkaVar, "a real Kafka broker"), ",")
}

// RedisURL returns the real Redis URL, or skips (fails under CI) when
// KCHAT_TEST_REDIS_URL is not set.
func RedisURL(t TB) string {
	t.Helper()
	return require(t, RedisVar, "a real Redis server")
}

// ServicesScript returns the path of the script that stops and starts the
// real broker, or skips (fails under CI) when it is not known.
func ServicesScript(t TB) string {
	t.Helper()
	return require(t, ServicesScriptVar, "scripts/services.sh to stop and restart the broker")
}

func require(t TB, name, what string) string {
	t.Helper()
	return requireVia(t, name, what, "Run `make services-up` and export what it prints, or run `make test-integration`")
}

func requireVia(t TB, name, what, how string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := "%s is not set: this test needs %s. " + how
	if os.Getenv("CI") != "" {
		t.Fatalf(msg+" (CI is set, so a missing service is a failure, not a skip)", name, what)
		return ""
	}
	t.Skipf(msg, name, what)
	return ""
}

// Prefix returns a topic/key prefix no other test run uses, such as
// "kt-3f9a1c2b.".
func Prefix(tag string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return tag + "-" + hex.EncodeToString(b[:]) + "."
}

var _ TB = (testing.TB)(nil)
