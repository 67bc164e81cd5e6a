package main

import "fmt"

// chatRows are the chat scenario's rows, with issue 20's goals: kchat's
// round trip against the plain (at-least-once) chain, which is what Kafka
// gives without exactly-once, while kchat keeps exactly-once; its CPU per
// question against the transactional chain's; and no duplicate or gap in
// any run that promises exactly-once.
func chatRows(c *ChatResult) []Row {
	if c == nil {
		return nil
	}
	k, txn, plain := c.Kchat, c.Chain, c.Plain
	// Unread topics (no question matched) prove nothing: not kept.
	kept := k.Hops.Matched > 0 && k.Hops.Duplicates+k.Hops.Gaps == 0
	return []Row{
		Row{Scenario: "chat round trip", Measure: fmt.Sprintf("p50, %d sessions × 1 query/s", c.Sessions),
			Kchat: k.Latency.P50, Baseline: plain.Latency.P50, Unit: "ms", Ratio: ratio(k.Latency.P50, plain.Latency.P50), unmet: !kept,
			Note: fmt.Sprintf("baseline: the plain (at-least-once) chain; transactional chain p50 %s ms; kchat: %s",
				fmtNum(txn.Latency.P50), onceNote(k.Hops))}.judged("≤ plain chain + 10 ms, with exactly-once kept", within(10)),
		Row{Scenario: "chat round trip", Measure: "p99",
			Kchat: k.Latency.P99, Baseline: plain.Latency.P99, Unit: "ms", Ratio: ratio(k.Latency.P99, plain.Latency.P99),
			Note: fmt.Sprintf("baseline: the plain chain; transactional chain p99 %s ms; answered %d of %d measured; errors %d",
				fmtNum(txn.Latency.P99), k.Answered, k.Latency.Count, k.Errors)}.judged("≤ plain chain p99 + 40 ms", within(40)),
		// Each side's CPU is its whole path but the broker: kchat's
		// WebSocket sessions (in kbench) and services; the chain's
		// producer, hops and reader, all in kbench's process.
		Row{Scenario: "chat round trip", Measure: "CPU per question vs the transactional chain",
			Kchat: k.CPUPerOp, Baseline: txn.CPUPerOp, Unit: "µs", Ratio: ratio(k.CPUPerOp, txn.CPUPerOp),
			Note: fmt.Sprintf("kchat: gateway, answerer and kbench's WebSocket sessions (services alone %s µs); chain: kbench's process, which runs its producer, both hops and the reader; plain chain %s µs",
				fmtNum(k.ServicesCPUPerOp), fmtNum(plain.CPUPerOp)) + chatBehind(k)}.judged("≤ 1.5×", atMost(1.5)),
		Row{Scenario: "chat round trip", Measure: "duplicates + gaps, every chat run",
			Kchat: float64(k.Hops.Duplicates + k.Hops.Gaps + txn.Hops.Duplicates + txn.Hops.Gaps), Unit: "records",
			unmet: k.Hops.Matched == 0 || txn.Hops.Matched == 0, worst: true,
			Note: fmt.Sprintf("kchat %s; transactional chain %s; plain chain (at-least-once, not counted) %s",
				onceNote(k.Hops), onceNote(txn.Hops), onceNote(plain.Hops))}.judged("0", none),
	}
}

// onceNote is what the exactly-once check of one run found.
func onceNote(h Hops) string {
	return fmt.Sprintf("%d duplicates, %d gaps (%d questions matched, %d unanswered)", h.Duplicates, h.Gaps, h.Matched, h.Unanswered)
}
