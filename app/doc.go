// Package app holds kchat's use cases: one concrete struct per file, each with
// an input struct and one method, depending only on domain and ports.
package app
