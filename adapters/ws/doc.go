// Package ws is the gateway's WebSocket inbound adapter (gorilla/websocket):
// the JSON chat protocol of docs/design.md ("The WebSocket protocol") on
// top of the chat use cases of app. upgrade.go authenticates, checks the
// Origin and the session, and upgrades; hub.go keeps the open sockets for
// shutdown (close 1001); conn.go is one socket's transport (bounded send
// queue, write deadlines, pings from a timer, a writer that runs only while
// frames are queued, pooled write buffers, so an idle socket stays small);
// protocol.go reads frames, asks questions and maps errors to codes; the
// frames are in frames.go.
package ws
