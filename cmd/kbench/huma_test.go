package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The huma scenario's two handlers as Go benchmarks, for profiles
// (go test ./cmd/kbench -run '^$' -bench Handler -cpuprofile ...). Besides
// ns/op they report cpu-ns/op, the process's user+system time per request
// (GC included), which other processes on a shared machine disturb less
// than the wall clock.
func BenchmarkHandlerKchat(b *testing.B) { benchServe(b, 0) }
func BenchmarkHandlerPlain(b *testing.B) { benchServe(b, 1) }

func benchServe(b *testing.B, which int) {
	kchat, plain, body := humaHandlers(fullParams.messageBytes)
	h := []http.Handler{kchat, plain}[which]
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if rec := serveOnce(h, body); rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
