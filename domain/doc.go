// Package domain holds kchat's message types, their validation and the domain
// errors. It imports nothing but the standard library.
package domain
