package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// TestCompressionRowsAreRatiosToNone: each codec is compared with none at
// the same concurrency, and benchmarks.md shows every row and codec.
func TestCompressionRowsAreRatiosToNone(t *testing.T) {
	run := func(perSecond, bytes float64) CodecRun {
		return CodecRun{Produce: Throughput{PerSecond: perSecond}, BytesPerRecord: bytes}
	}
	c := &CompressionResult{Runs: map[string]map[string]CodecRun{
		"1":  {"none": run(100, 400), "gzip": run(90, 380), "snappy": run(100, 400), "lz4": run(100, 400), "zstd": run(95, 390)},
		"64": {"none": run(1000, 300), "gzip": run(800, 150), "snappy": run(1000, 200), "lz4": run(1000, 210), "zstd": run(900, 120)},
	}}
	got := compressionRows(c)
	if len(got) != 8 {
		t.Fatalf("%d rows, want 4 codecs × 2 concurrencies: %+v", len(got), got)
	}
	zstd64 := got[7]
	if zstd64.Measure != "zstd vs none: log bytes per record, 64 client(s)" || zstd64.Ratio != 0.4 || zstd64.Met != nil ||
		!strings.Contains(zstd64.Note, "throughput 0.90×") {
		t.Fatalf("zstd at 64 clients: %+v", zstd64)
	}
	r := &Results{Compression: c, Rows: got}
	md := markdown(r)
	for _, g := range got {
		if !strings.Contains(md, "| "+g.Measure+" |") {
			t.Errorf("benchmarks.md lacks the row %q", g.Measure)
		}
	}
	if !strings.Contains(md, "| 64 | zstd | 900.0 | 0.90× |") || !strings.Contains(md, "| 120.0 | 0.40× |") {
		t.Errorf("benchmarks.md lacks zstd's details:\n%s", md)
	}
}

// TestIntegrationCompressionScenario runs the scenario briefly on the real
// broker: none writes no compressed batch, every other codec compresses
// the 64 clients' shared batches, and gzip and zstd store them smaller.
func TestIntegrationCompressionScenario(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	b := &bench{
		p:       params{warmup: 100 * time.Millisecond, duration: 400 * time.Millisecond},
		brokers: brokers, run: "it" + time.Now().UTC().Format("150405.000"),
		quietLog: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	t.Cleanup(func() {
		for _, p := range b.topics {
			kafkatest.DeleteTopics(t, brokers, p)
		}
	})
	res, err := b.runCompression(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"1", "64"} {
		for name, r := range res.Runs[n] {
			if r.Records < r.Produce.Ops || r.LogBytes <= 0 || r.ReadPerSecond <= 0 {
				t.Errorf("%s, %s clients: implausible %+v", name, n, r)
			}
		}
		if none := res.Runs[n]["none"]; none.Compressed != 0 {
			t.Errorf("none, %s clients: %.0f%% of records in compressed batches", n, none.Compressed*100)
		}
	}
	many := res.Runs["64"]
	for _, c := range kafka.Compressions()[1:] {
		if many[c.String()].Compressed == 0 {
			t.Errorf("%s, 64 clients: no compressed batch", c)
		}
	}
	for _, c := range []kafka.Compression{kafka.CompressionGzip, kafka.CompressionZstd} {
		if got, none := many[c.String()].BytesPerRecord, many["none"].BytesPerRecord; got >= none {
			t.Errorf("%s, 64 clients: %.0f log bytes per record, none %.0f", c, got, none)
		}
	}
}
