// Package cluster holds the tests that prove the 3-broker test cluster of
// `scripts/services.sh cluster-up` is what docs/reliability.md says it is:
// three brokers, every topic on all three with two in sync required, and a
// killed leader replaced without losing an acknowledged record. The fault
// scenarios run on it.
package cluster
