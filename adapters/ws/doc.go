// Package ws is the gateway's WebSocket inbound adapter (gorilla/websocket):
// the JSON chat protocol of SPEC §6, one reader and one writer goroutine per
// connection, bounded send queues, write deadlines, ping/pong, frame and
// rate limits, resume from the session store, and answers pushed from the
// answer feed to the sockets of their session.
package ws
