package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	json "github.com/goccy/go-json"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// HumaResult holds the in-process handler comparison.
type HumaResult struct {
	Rounds   int          `json:"rounds"`
	Kchat    HandlerBench `json:"kchat"`
	Baseline HandlerBench `json:"baseline"`
}

// HandlerBench is the median round of a handler's benchmark.
type HandlerBench struct {
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
}

// nopPublisher acknowledges every message at once, so the benchmark sees
// only the HTTP layer and the use case.
type nopPublisher struct{ offset atomic.Int64 }

func (p *nopPublisher) Publish(_ context.Context, msg domain.Message) (domain.Position, error) {
	return domain.Position{Topic: string(msg.Type), Offset: p.offset.Add(1)}, nil
}

func (p *nopPublisher) PublishBatch(ctx context.Context, msgs []domain.Message) []ports.PublishResult {
	out := make([]ports.PublishResult, len(msgs))
	for i, m := range msgs {
		out[i].Position, out[i].Err = p.Publish(ctx, m)
	}
	return out
}

// runHuma measures POST /messages in process: kchat's producer handler
// (huma on chi, with the server's middleware) against the same use case
// behind a plain chi + net/http handler with the same middleware, body
// limit and content-type check. Rounds alternate; the median is kept.
func (b *bench) runHuma(context.Context) (*HumaResult, error) {
	kchat, plain, body := humaHandlers(b.p.messageBytes)
	for name, h := range map[string]http.Handler{"kchat": kchat, "baseline": plain} {
		if code := serveOnce(h, body).Code; code != http.StatusAccepted {
			return nil, errors.New(name + ": POST /messages answered " + http.StatusText(code))
		}
	}
	rounds := 7
	if b.cfg.Short {
		rounds = 1
	}
	var ks, bs []testing.BenchmarkResult
	for range rounds {
		ks = append(ks, benchHandler(kchat, body))
		bs = append(bs, benchHandler(plain, body))
	}
	return &HumaResult{Rounds: rounds, Kchat: median(ks), Baseline: median(bs)}, nil
}

// humaHandlers are the two handlers the huma scenario compares, on one
// use case with a publisher that acknowledges at once, and a body with a
// message of messageBytes.
func humaHandlers(messageBytes int) (kchat, plain http.Handler, body []byte) {
	submit := &app.SubmitMessage{Publisher: &nopPublisher{}}
	quiet := slog.New(slog.DiscardHandler)
	srv := httpapi.NewServer(httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Minute}, "kbench", nil, quiet)
	httpapi.NewProducer(submit, &app.SubmitBatch{Publisher: submit.Publisher}, nil, quiet).Register(srv.API())
	body, _ = json.Marshal(map[string]string{"session_id": "s1", "user_id": "kbench", "type": "query", "message": "How do I run kchat? " + string(bytes.Repeat([]byte("x"), messageBytes-20))})
	return srv.Handler(), plainProducer(submit), body
}

func serveOnce(h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func benchHandler(h http.Handler, body []byte) testing.BenchmarkResult {
	return testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rec := serveOnce(h, body); rec.Code != http.StatusAccepted {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

func median(rs []testing.BenchmarkResult) HandlerBench {
	slices.SortFunc(rs, func(a, b testing.BenchmarkResult) int { return int(a.NsPerOp() - b.NsPerOp()) })
	m := rs[len(rs)/2]
	return HandlerBench{NsPerOp: float64(m.T.Nanoseconds()) / float64(m.N), AllocsPerOp: m.AllocsPerOp(), BytesPerOp: m.AllocedBytesPerOp()}
}

// plainProducer is POST /messages written directly on chi and net/http,
// with the JSON library kchat's huma configuration uses (goccy/go-json):
// the baseline of the huma comparison.
func plainProducer(submit *app.SubmitMessage) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer)
	r.Post("/messages", func(w http.ResponseWriter, r *http.Request) {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			http.Error(w, "want application/json", http.StatusUnsupportedMediaType)
			return
		}
		var in httpapi.MessageInput
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10))
		if err := dec.Decode(&in); err != nil {
			http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := submit.Execute(r.Context(), app.SubmitMessageInput{
			SessionID: in.SessionID, UserID: in.UserID, MessageID: in.MessageID, Type: domain.MessageType(in.Type),
			Message: in.Message, ReplyTo: in.ReplyTo, Metadata: in.Metadata,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(httpapi.Queued{Status: "queued", MessageID: res.MessageID,
			Topic: res.Position.Topic, Partition: res.Position.Partition, Offset: res.Position.Offset})
	})
	return r
}
