package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kchat/kchat/internal/fakemodel"
)

// The stream scenario's load and model (issue 17): 100 sessions each
// asking a question a second, a model of 50 tokens 20 ms apart.
const (
	streamSessions   = 100
	streamTokens     = 50
	streamTokenDelay = 20 * time.Millisecond
	// streamConcurrency is KCHAT_ANSWERER_CONCURRENCY for the run: a
	// generation takes a second, so the default 16 would answer at most
	// 16 questions a second, below the 100 asked.
	streamConcurrency = 128
)

// StreamResult holds the stream scenario's raw figures, each from when a
// question was due (sent).
type StreamResult struct {
	Sessions    int     `json:"sessions"`
	Rate        float64 `json:"questions_per_second"`
	Tokens      int     `json:"model_tokens"`
	TokenMs     float64 `json:"model_token_delay_ms"`
	Concurrency int     `json:"answerer_concurrency"`
	Sent        int64   `json:"sent"`
	Answered    int64   `json:"answered_in_window"`
	Failed      int64   `json:"failed_answers"`
	NoDelta     int64   `json:"answers_without_delta"`
	Unmatched   int64   `json:"answers_without_model_times"`
	Errors      int64   `json:"errors"`
	// Unanswered were still waiting for their answer a minute after the
	// last question (warm-up included).
	Unanswered int     `json:"unanswered"`
	FirstErr   string  `json:"first_error,omitempty"`
	CPUPerOp   float64 `json:"cpu_us_per_question"`
	// DeltasPerAnswer is the answer_delta frames a socket got per answer.
	DeltasPerAnswer float64 `json:"deltas_per_answer"`
	// FirstDelta and Final are the times to the question's first
	// answer_delta and to its answer frame; ModelFirst and ModelLast when
	// the model flushed its first and last token.
	FirstDelta Spread `json:"first_delta"`
	Final      Spread `json:"final"`
	ModelFirst Spread `json:"model_first_token"`
	ModelLast  Spread `json:"model_last_token"`
	// Gap is each question's first delta minus its model's first token:
	// what streaming adds (answerer, stream topic, gateway, socket).
	Gap Spread `json:"first_delta_after_model_first_token"`
	// AfterLast is each question's final answer minus its model's last
	// token: the transaction, the answer topic and the gateway.
	AfterLast Spread `json:"final_after_model_last_token"`
}

// streamTimes gathers the figures of the questions due after the warm-up.
type streamTimes struct {
	measureFrom time.Time
	model       *fakemodel.Server

	firstDelta, final, modelFirst, modelLast, gap, afterLast *latencies

	sent, answered, failed, noDelta, unmatched, deltas, errs atomic.Int64
	firstErr                                                 atomic.Value
}

func newStreamTimes(measureFrom time.Time, model *fakemodel.Server) *streamTimes {
	return &streamTimes{measureFrom: measureFrom, model: model,
		firstDelta: newLatencies(), final: newLatencies(), modelFirst: newLatencies(),
		modelLast: newLatencies(), gap: newLatencies(), afterLast: newLatencies()}
}

func (s *streamTimes) fail(err error) {
	s.errs.Add(1)
	s.firstErr.CompareAndSwap(nil, err.Error())
}

// finish records an answered question.
func (s *streamTimes) finish(q *streamQuestion) {
	if q.due.Before(s.measureFrom) {
		return
	}
	if q.failed {
		s.failed.Add(1)
		return
	}
	s.answered.Add(1)
	s.deltas.Add(int64(q.deltas))
	s.final.record(q.final.Sub(q.due))
	first, last, ok := s.model.Finished(strconv.Itoa(q.ref))
	if ok {
		s.modelFirst.record(first.Sub(q.due))
		s.modelLast.record(last.Sub(q.due))
		s.afterLast.record(q.final.Sub(last))
	} else {
		s.unmatched.Add(1)
	}
	if q.firstDelta.IsZero() {
		s.noDelta.Add(1)
		return
	}
	s.firstDelta.record(q.firstDelta.Sub(q.due))
	if ok {
		s.gap.record(q.firstDelta.Sub(first))
	}
}

func (s *streamTimes) result(cpuUsed time.Duration) *StreamResult {
	r := &StreamResult{
		Sessions: streamSessions, Rate: streamSessions, Tokens: streamTokens,
		TokenMs: float64(streamTokenDelay) / float64(time.Millisecond), Concurrency: streamConcurrency,
		Sent: s.sent.Load(), Answered: s.answered.Load(), Failed: s.failed.Load(), NoDelta: s.noDelta.Load(),
		Unmatched: s.unmatched.Load(), Errors: s.errs.Load(),
		FirstDelta: s.firstDelta.spread(), Final: s.final.spread(), ModelFirst: s.modelFirst.spread(),
		ModelLast: s.modelLast.spread(), Gap: s.gap.spread(), AfterLast: s.afterLast.spread(),
	}
	if r.Answered > 0 {
		r.CPUPerOp = cpuUsed.Seconds() * 1e6 / float64(r.Answered)
		r.DeltasPerAnswer = float64(s.deltas.Load()) / float64(r.Answered)
	}
	if e, ok := s.firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	return r
}

// runStream measures streamed answers over WebSocket: the gateway and the
// answerer with KCHAT_GENERATOR=openai against a fake streaming model in
// this process, streamSessions sessions each asking a question a second.
func (b *bench) runStream(ctx context.Context) (*StreamResult, error) {
	model := fakemodel.Start(streamTokens, streamTokenDelay, "kbref")
	defer model.Close()
	prefix := b.prefix("stream")
	env := append(b.serviceEnv(prefix), "KCHAT_QUERY_PUBLISHER=kafka", "KCHAT_GENERATOR=openai",
		"KCHAT_LLM_BASE_URL="+model.URL(), "KCHAT_LLM_MODEL=fake", fmt.Sprintf("KCHAT_ANSWERER_CONCURRENCY=%d", streamConcurrency))
	answerer, err := b.bins.start(ctx, b.logDir, "answerer", "KCHAT_ANSWERER_ADDR", env...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = answerer.stop() }()
	auth := newSessionAuth()
	gateway, err := b.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR", append(env, auth.env(streamSessions)...)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = gateway.stop() }()
	cpu := b.cpu(gateway, answerer)

	b.logf("stream: connecting %d sessions", streamSessions)
	wsURL := "ws" + strings.TrimPrefix(gateway.url, "http") + "/ws"
	conns := make([]*streamConn, streamSessions)
	for i := range conns {
		ws, err := dialChat(ctx, wsURL, auth, i)
		if err != nil {
			return nil, err
		}
		conns[i] = newStreamConn(ws.ws)
	}
	defer func() {
		for _, c := range conns {
			_ = c.ws.Close()
		}
	}()
	// One question through the whole pipeline first: the stages have
	// joined their groups and the gateway reads both feeds.
	if err := conns[0].warm(ctx); err != nil {
		return nil, fmt.Errorf("first answer: %w", err)
	}
	start := time.Now().Add(50 * time.Millisecond)
	st := newStreamTimes(start.Add(b.p.chatWarmup), model)
	end := st.measureFrom.Add(b.p.chatDuration)
	for _, c := range conns {
		go c.read(st)
	}
	b.logf("stream: %d questions/s for %s, a model of %d tokens %s apart", streamSessions, b.p.chatWarmup+b.p.chatDuration, streamTokens, streamTokenDelay)
	var cpu0 atomic.Int64
	go func() { time.Sleep(time.Until(st.measureFrom)); cpu0.Store(int64(cpu.read())) }()
	schedule(ctx, len(conns), start, end, func(s, seq int, due time.Time) {
		ref := s*1_000_000 + seq
		conns[s].send(st, seq, ref, fmt.Sprintf("%s (kbref%d)", questions[(s+seq)%len(questions)], ref), due)
	})
	// Answers of a session come in order and each takes the model a
	// second, so at a question a second a session's questions queue.
	unanswered := waitStreams(conns, time.Minute)
	res := st.result(cpu.read() - time.Duration(cpu0.Load()))
	res.Unanswered = unanswered
	return res, nil
}
