//go:build !linux

package ws

// readable reports true: without a portable peek, gorilla's own read waits.
func readable(uintptr) bool { return true }
