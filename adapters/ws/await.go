package ws

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
)

// An idle socket is one parked goroutine. It parks waiting until the
// socket is readable, on a shallow stack, before it calls into gorilla's
// frame reader, whose deeper stack would otherwise stay allocated for as
// long as the socket is idle: that halves an idle socket's stack.

// readerHijacker hands gorilla a read buffer the connection can see, so
// the reader only waits on the socket when that buffer is empty.
type readerHijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

// Hijack gives the connection a readBufferSize reader of its own in place
// of net/http's 4 KiB one, which becomes garbage.
func (h *readerHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || rw.Reader.Buffered() > 0 {
		return conn, rw, err // gorilla refuses early data itself
	}
	h.br = bufio.NewReaderSize(conn, readBufferSize)
	return conn, bufio.NewReadWriter(h.br, rw.Writer), nil
}

// rawConn is conn's raw file descriptor access, or nil without one (then
// gorilla's read does the waiting).
func rawConn(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// awaitReadable returns once a frame may be read without blocking in
// gorilla: bytes are buffered, or the socket is readable (data, EOF or an
// error), or its read deadline passed.
func awaitReadable(br *bufio.Reader, raw syscall.RawConn) error {
	if br == nil || raw == nil || br.Buffered() > 0 {
		return nil
	}
	return raw.Read(func(fd uintptr) bool { return readable(fd) })
}
