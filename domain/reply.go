package domain

// Reply is where the answer to a query is to go: the partition of the
// answer topic, and of the stream topic for its deltas, that the gateway
// which took the question reads (docs/design.md, "Answer routing").
// Transport only, like Trace: outside the envelope and its signature, so a
// forged one can misroute an answer but never change it. Unset, an answer
// goes by its session key, where a gateway that reads every partition finds
// it.
type Reply struct {
	Partition int32
	Set       bool
}

// ReplyTo is the Reply naming partition p.
func ReplyTo(p int32) Reply { return Reply{Partition: p, Set: true} }
