// Package memory holds in-process stand-ins for kchat's driven ports. They keep
// the same contracts as the real adapters (ports/porttest proves it) and back
// hermetic tests and the all-in-one binary.
package memory
