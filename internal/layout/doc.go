// Package layout holds no code, only the tests of the repository's shape:
// the design document names only paths that exist and sections that code
// comments point at; the layers import what docs/design.md allows (checked
// with go list, beside the linter's depguard rules); hand-written files stay
// small; build outputs stay out of git.
package layout
