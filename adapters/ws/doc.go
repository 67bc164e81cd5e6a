// Package ws is the gateway's WebSocket inbound adapter (gorilla/websocket):
// the JSON chat protocol of SPEC §6, one reader goroutine per connection
// (the writer runs only while frames are queued, pings come from a timer,
// and write buffers are pooled, so an idle connection stays small),
// bounded send queues, write deadlines, ping/pong, frame and rate limits,
// resume from the session store, and answers pushed from the answer feed
// to the sockets of their session.
package ws
