package main

import (
	"fmt"
	"strings"

	"github.com/kchat/kchat/adapters/kafka"
)

// compressionRows are the summary's rows of the compression scenario: each
// codec's bytes on the broker per record against none's, throughput in the
// note. Nothing is a goal: the figures choose KCHAT_KAFKA_COMPRESSION's
// default.
func compressionRows(c *CompressionResult) []Row {
	if c == nil {
		return nil
	}
	var out []Row
	for _, n := range compressionClients {
		runs := c.Runs[fmt.Sprint(n)]
		none := runs[kafka.CompressionNone.String()]
		for _, codec := range kafka.Compressions()[1:] {
			r := runs[codec.String()]
			out = append(out, Row{Scenario: "compression", Measure: fmt.Sprintf("%s vs none: log bytes per record, %d client(s)", codec, n),
				Kchat: r.BytesPerRecord, Baseline: none.BytesPerRecord, Unit: "B", Ratio: ratio(r.BytesPerRecord, none.BytesPerRecord),
				Note: fmt.Sprintf("throughput %.2f× (%.0f vs %.0f msg/s); CPU µs/op %.0f vs %.0f; %.0f%% of records in compressed batches",
					ratio(r.Produce.PerSecond, none.Produce.PerSecond), r.Produce.PerSecond, none.Produce.PerSecond,
					r.Produce.CPUPerOp, none.Produce.CPUPerOp, r.Compressed*100)})
		}
	}
	return out
}

// compressionMarkdown is the compression scenario's section of
// benchmarks.md.
func compressionMarkdown(b *strings.Builder, c *CompressionResult) {
	fmt.Fprintf(b, "\n## compression\n\nThe same chat questions (average record value %.0f bytes: kchat's v1 envelope with a UUID message id, a UUID session id, a visitor id and the question) produced as kchat's producer and gateway do (`adapters/kafka.NewClient`: idempotent, acks=all, linger 0, `ProduceSync` per message) with each `KCHAT_KAFKA_COMPRESSION` codec, each to a fresh topic, then the topic's log measured on the broker (`DescribeLogDirs`, batch headers included) and read back from the start by one client. \"× none\" is the ratio to `none` at the same concurrency in the same run. franz-go sends a batch uncompressed when the codec would not make it smaller: \"compressed\" is the share of records in compressed batches. CPU is the load generator's (compression and decompression happen in the clients; the broker keeps the producer's codec, `compression.type=producer`).\n\n", c.ValueBytes)
	b.WriteString("| clients | codec | msg/s | × none | p50 ms | p99 ms | CPU µs/op | records | log bytes/record | × none | compressed | read rec/s | read CPU µs/rec |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range compressionClients {
		runs := c.Runs[fmt.Sprint(n)]
		none := runs[kafka.CompressionNone.String()]
		for _, codec := range kafka.Compressions() {
			r := runs[codec.String()]
			fmt.Fprintf(b, "| %d | %s | %s | %.2f× | %s | %s | %s | %d | %s | %.2f× | %.0f%% | %s | %s |\n", n, codec,
				fmtNum(r.Produce.PerSecond), ratio(r.Produce.PerSecond, none.Produce.PerSecond),
				fmtNum(r.Produce.Latency.P50), fmtNum(r.Produce.Latency.P99), fmtNum(r.Produce.CPUPerOp),
				r.Records, fmtNum(r.BytesPerRecord), ratio(r.BytesPerRecord, none.BytesPerRecord), r.Compressed*100,
				fmtNum(r.ReadPerSecond), fmtNum(r.ReadCPUPerRecord))
		}
	}
}
