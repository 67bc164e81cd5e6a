// Package porttest holds the contract suites of kchat's ports. Every adapter
// of a port runs the same suite, so the in-memory stand-ins and the real
// Kafka and Redis adapters are held to one behaviour.
package porttest
