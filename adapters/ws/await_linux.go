package ws

import "syscall"

// readable peeks at the socket without consuming or blocking: true when
// there is data, EOF or an error for the next read to report.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN //nolint:errorlint // a bare errno from the syscall
}
