package ws

import (
	"context"

	"github.com/gorilla/websocket"
)

// The handler keeps every open socket, so that shutdown can close them
// all with 1001 (going away); answers find their sockets through
// app.Answers, not through this set.

// Run waits until ctx ends, then closes every socket with 1001 and refuses
// new ones.
func (h *Handler) Run(ctx context.Context) error {
	<-ctx.Done()
	h.mu.Lock()
	h.closed = true
	all := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		all = append(all, c)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	return nil
}

// register adds c to the open sockets; false once shutting down.
func (h *Handler) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.metrics.open.Inc()
	return true
}

// unregister forgets c and closes it.
func (h *Handler) unregister(c *conn) {
	h.mu.Lock()
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.metrics.open.Dec()
	}
	h.mu.Unlock()
	c.closeWith(websocket.CloseNormalClosure, "")
}

// Open counts the open sockets and the users holding one.
func (h *Handler) Open() (conns, users int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns), len(h.perUser)
}
