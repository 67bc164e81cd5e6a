package main

import (
	"fmt"
	"strings"
)

// peerRows are the summary's rows of the peer scenario: kchat against
// Centrifugo, the baseline, measured in the same run. The goal (issue 20)
// is on idle memory; the delivery and CPU rows are for information.
func peerRows(p *PeerResult) []Row {
	if p == nil {
		return nil
	}
	if p.Skipped != "" {
		return []Row{{Scenario: "peer", Measure: "kchat vs Centrifugo", Note: "skipped: " + p.Skipped}}
	}
	k, c, small := p.Kchat, p.Centrifugo, p.CentrifugoSmallBuffers
	idle := func(what string, c MemoryRun) Row {
		return Row{Scenario: "peer", Measure: fmt.Sprintf("RSS per idle WebSocket vs Centrifugo %s%s, %d connections", p.CentrifugoVersion, what, p.Connections),
			Kchat: k.Idle.PerConnKiB, Baseline: c.PerConnKiB, Unit: "KiB", Ratio: ratio(k.Idle.PerConnKiB, c.PerConnKiB),
			Note: fmt.Sprintf("RSS before %.1f vs %.1f MiB, after %.1f vs %.1f MiB", mib(k.Idle.RSSBefore), mib(c.RSSBefore), mib(k.Idle.RSSAfter), mib(c.RSSAfter))}.
			judged("≤ Centrifugo's, same run", atMost(1))
	}
	users := fmt.Sprintf("%d users × 1 socket, %d rounds", p.Users, p.Rounds)
	return []Row{
		idle(" (its defaults)", c.Idle),
		idle(" with kchat's socket buffers (512 B read, pooled 4 KiB write)", small),
		{Scenario: "peer", Measure: "delivery p50, publish call → socket, " + users,
			Kchat: k.Delivery.P50, Baseline: c.Delivery.P50, Unit: "ms", Ratio: ratio(k.Delivery.P50, c.Delivery.P50),
			Note: deliveryNote(k, c)},
		{Scenario: "peer", Measure: "delivery p99",
			Kchat: k.Delivery.P99, Baseline: c.Delivery.P99, Unit: "ms", Ratio: ratio(k.Delivery.P99, c.Delivery.P99),
			Note: fmt.Sprintf("max %.1f vs %.1f ms; a round (first publish → last arrival) %.1f vs %.1f ms, medians", k.Delivery.Max, c.Delivery.Max, medianOf(k.RoundMs), medianOf(c.RoundMs))},
		{Scenario: "peer", Measure: "server CPU per delivered message",
			Kchat: k.ServerCPU, Baseline: c.ServerCPU, Unit: "µs", Ratio: ratio(k.ServerCPU, c.ServerCPU),
			Note: "kchat: the gateway alone (the broker and Redis not counted); Centrifugo: its process (server API, broker, sockets)"},
	}
}

func deliveryNote(k, c PeerRun) string {
	note := fmt.Sprintf("delivered %d vs %d, lost %d vs %d, duplicates %d vs %d, publish errors %d vs %d",
		k.Delivered, c.Delivered, k.Lost, c.Lost, k.Duplicates, c.Duplicates, k.PublishErrors, c.PublishErrors)
	for _, e := range []struct{ name, err string }{{"kchat", k.FirstErr}, {"Centrifugo", c.FirstErr}} {
		if e.err != "" {
			note += fmt.Sprintf("; %s's first error: %s", e.name, e.err)
		}
	}
	return note
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// peerMarkdown is the peer scenario's section of benchmarks.md.
func peerMarkdown(b *strings.Builder, p *PeerResult) {
	if p == nil {
		return
	}
	b.WriteString("\n## peer: Centrifugo\n\n")
	if p.Skipped != "" {
		fmt.Fprintf(b, "Skipped: %s.\n", p.Skipped)
		return
	}
	fmt.Fprintf(b, "kchat's gateway and Centrifugo %s (built by `scripts/services.sh build-centrifugo`, memory engine, a generated configuration: HS256 connection JWTs, every user subscribed on the server side to its personal channel `personal:#<user>`, the server HTTP API with a key; Centrifugo's defaults otherwise), both running for the whole scenario on loopback. "+
		"**Idle:** %d WebSockets opened to each server in turn (from %d loopback source addresses, each with a JWT of a user of its own; kchat: the session frame read, Centrifugo: the connect reply read, with the personal channel in it), each read by a goroutine that answers the server's pings; RSS (VmRSS) 1 s before and 3 s after, every connection checked still open. "+
		"**Delivery:** %d users with one socket each on each server; per round one message of %d bytes of text to every user, published by %d workers one call at a time, and the time from each publish call to the message's arrival on its socket. Centrifugo: a `publish` call of the server API to the user's personal channel. kchat: first, untimed, the user asks a question and kbench records it in the session as the answerer's retrieve stage does (an answer is delivered only if it replies to a question its session records), then 1 s to settle; then an answer signed with the scenario's `KCHAT_ANSWER_KEY` is written to the answer topic with kchat's client and publisher (acks=all), as the generate stage would, read by the gateway's feed, checked against the session in Redis and written to the socket. A warm-up round each, then %d measured rounds, the servers taking turns (the first alternating).\n\n",
		p.CentrifugoVersion, p.Connections, sourceAddrs, p.Users, p.TextBytes, p.Publishers, p.Rounds)
	b.WriteString("A second Centrifugo, for the idle run only, has the socket buffers kchat's gateway uses (`websocket.read_buffer_size` 512, `write_buffer_size` 4096, `use_write_buffer_pool`: Centrifugo's options for many idle connections) instead of gorilla/websocket's defaults (4 KiB read and write buffers held by each socket).\n\n")
	b.WriteString("| server | RSS before | RSS after | per idle connection | delivery p50 ms | p90 ms | p99 ms | max ms | round ms (median) | delivered | lost | duplicates | publish errors | server CPU µs/message |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range []struct {
		name string
		run  PeerRun
	}{{"kchat gateway", p.Kchat}, {"Centrifugo " + p.CentrifugoVersion, p.Centrifugo}} {
		r := s.run
		fmt.Fprintf(b, "| %s | %.1f MiB | %.1f MiB | %.2f KiB | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s |\n", s.name,
			mib(r.Idle.RSSBefore), mib(r.Idle.RSSAfter), r.Idle.PerConnKiB, fmtNum(r.Delivery.P50), fmtNum(r.Delivery.P90), fmtNum(r.Delivery.P99),
			fmtNum(r.Delivery.Max), fmtNum(medianOf(r.RoundMs)), r.Delivered, r.Lost, r.Duplicates, r.PublishErrors, fmtNum(r.ServerCPU))
	}
	sb := p.CentrifugoSmallBuffers
	fmt.Fprintf(b, "| Centrifugo %s, kchat's socket buffers | %.1f MiB | %.1f MiB | %.2f KiB | — | — | — | — | — | — | — | — | — | — |\n",
		p.CentrifugoVersion, mib(sb.RSSBefore), mib(sb.RSSAfter), sb.PerConnKiB)
}
