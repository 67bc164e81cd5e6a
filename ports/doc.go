// Package ports declares the small role interfaces (driven ports) that kchat's
// use cases need. Adapters implement them; ports/porttest holds the contract
// suites every implementation runs.
package ports
