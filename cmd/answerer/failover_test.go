package main

import (
	"testing"
	"time"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// These tests measure answerer failover: how long a kill -9 of an answerer
// delays answers (docs/reliability.md, "Answerer failover"), with
// failoverRig (failover_rig_test.go), which the fault scenarios reuse.

// TestIntegrationFailoverRestartedAnswerer kills the only answerer with -9
// inside a transaction and restarts it at once under the same instance id:
// answers resume long before the session timeout (static membership) and
// the transaction timeout (the restart fences the open transaction), both
// set high so that neither can explain a quick recovery.
func TestIntegrationFailoverRestartedAnswerer(t *testing.T) {
	prefix := testenv.Prefix("it-failover1")
	rig := newFailoverRig(t, rigConfig{
		Brokers: kafkatest.Real(t, prefix), RedisURL: testenv.RedisURL(t), Prefix: prefix,
		SessionTimeout: 30 * time.Second, TransactionTimeout: time.Minute,
	})
	rig.start("a")
	rig.serving("a")
	res := rig.measureFailover("a", true)
	t.Logf("kill -9 inside a transaction (found in %d looks), restarted at once: the next answers came %s after the kill", res.Attempts, res.Delay.Round(10*time.Millisecond))
	if limit := 10 * time.Second; res.Delay > limit {
		t.Errorf("answers resumed %s after the kill, want at most %s (session timeout 30s, transaction timeout 1m)", res.Delay, limit)
	}
}

// TestIntegrationFailoverTwoAnswerers kills one of two answerers with -9
// inside a transaction: the survivor answers every question within the
// session timeout plus 3 s, with a transaction timeout of a minute (the
// survivor fences the departed replica's transaction).
func TestIntegrationFailoverTwoAnswerers(t *testing.T) {
	prefix := testenv.Prefix("it-failover2")
	testFailoverTwoAnswerers(t, rigConfig{
		Brokers: kafkatest.Real(t, prefix), RedisURL: testenv.RedisURL(t), Prefix: prefix,
		SessionTimeout: 6 * time.Second, TransactionTimeout: time.Minute, // 6 s: the broker's default minimum
	})
}

// TestIntegrationClusterFailoverTwoAnswerers is TestIntegrationFailoverTwoAnswerers
// on the 3-broker test cluster, whose group.min.session.timeout.ms allows
// a session timeout of 2 s.
func TestIntegrationClusterFailoverTwoAnswerers(t *testing.T) {
	brokers := testenv.ClusterBrokers(t)
	prefix := testenv.Prefix("it-failover3")
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	testFailoverTwoAnswerers(t, rigConfig{
		Brokers: brokers, RedisURL: testenv.RedisURL(t), Prefix: prefix, ReplicationFactor: 3,
		SessionTimeout: 2 * time.Second, TransactionTimeout: time.Minute,
	})
}

func testFailoverTwoAnswerers(t *testing.T, cfg rigConfig) {
	rig := newFailoverRig(t, cfg)
	rig.start("a")
	rig.start("b")
	rig.serving("a", "b")
	res := rig.measureFailover("a", false)
	t.Logf("kill -9 of one of two answerers inside a transaction (found in %d looks), session timeout %s: the next answers came %s after the kill",
		res.Attempts, cfg.SessionTimeout, res.Delay.Round(10*time.Millisecond))
	if limit := cfg.SessionTimeout + 3*time.Second; res.Delay > limit {
		t.Errorf("answers resumed %s after the kill, want at most %s (the session timeout plus 3 s)", res.Delay, limit)
	}
}
