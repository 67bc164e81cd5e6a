package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// peerSide is one server in the delivery runs.
type peerSide struct {
	name  string
	pid   int
	users int
	// prepare, when set, runs before a round's publishing (not timed).
	prepare func(ctx context.Context, round int) error
	publish func(ctx context.Context, round, user int) error

	current atomic.Pointer[deliveryRound]

	lat        *latencies
	roundMs    []float64
	delivered  int64
	lost, dups int64
	pubErrs    int64
	firstErr   error
	cpu        time.Duration
}

// deliver is a socket's report that user got round's message at at.
func (s *peerSide) deliver(round, user int, at time.Time) {
	if r := s.current.Load(); r != nil && r.n == round {
		r.received(user, at)
	}
}

// round publishes one message to every user and waits for them all (at
// most peerDeliveryWait); a measured round adds to the figures.
func (s *peerSide) round(ctx context.Context, n int, measured bool) error {
	if s.prepare != nil {
		if err := s.prepare(ctx, n); err != nil {
			return err
		}
		sleep(ctx, time.Second) // what preparing set off settles before the clock starts
	}
	r := newDeliveryRound(n, s.users)
	s.current.Store(r)
	cpu0 := procCPU(s.pid)
	errs, firstErr := forEach(ctx, s.users, func(ctx context.Context, i int) error {
		r.publishing(i)
		return s.publish(ctx, n, i)
	})
	r.wait(ctx, peerDeliveryWait)
	cpu := procCPU(s.pid) - cpu0
	s.current.Store(nil)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f := r.figures()
	if !measured {
		if f.lost > 0 || errs > 0 {
			err := fmt.Errorf("%d of %d messages lost, %d publish errors", f.lost, s.users, errs)
			if firstErr != nil {
				err = fmt.Errorf("%w, the first: %w", err, firstErr)
			}
			return err
		}
		return nil
	}
	for _, d := range f.latencies {
		s.lat.record(d)
	}
	s.roundMs = append(s.roundMs, float64(f.span.Microseconds())/1000)
	s.delivered += int64(len(f.latencies))
	s.lost += int64(f.lost)
	s.dups += int64(f.dups)
	s.pubErrs += errs
	if s.firstErr == nil {
		s.firstErr = firstErr
	}
	s.cpu += cpu
	return nil
}

func (s *peerSide) finish(run *PeerRun) {
	run.Delivery, run.RoundMs = s.lat.spread(), s.roundMs
	run.Delivered, run.Lost, run.Duplicates, run.PublishErrors = s.delivered, s.lost, s.dups, s.pubErrs
	if s.firstErr != nil {
		run.FirstErr = s.firstErr.Error()
	}
	if s.delivered > 0 {
		run.ServerCPU = float64(s.cpu.Microseconds()) / float64(s.delivered)
	}
}

// deliveryRound is one message to each user: when each was published and
// when it arrived.
type deliveryRound struct {
	n         int
	mu        sync.Mutex
	sent, got []time.Time
	dups      int
	left      int
	all       chan struct{}
}

func newDeliveryRound(n, users int) *deliveryRound {
	return &deliveryRound{n: n, sent: make([]time.Time, users), got: make([]time.Time, users), left: users, all: make(chan struct{})}
}

// publishing notes that user's message is published now: its latency
// counts from here.
func (r *deliveryRound) publishing(user int) {
	now := time.Now()
	r.mu.Lock()
	r.sent[user] = now
	r.mu.Unlock()
}

func (r *deliveryRound) received(user int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if user < 0 || user >= len(r.got) {
		return
	}
	if !r.got[user].IsZero() {
		r.dups++
		return
	}
	r.got[user] = at
	if r.left--; r.left == 0 {
		close(r.all)
	}
}

func (r *deliveryRound) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.all:
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *deliveryRound) figures() roundFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := figuresOf(r.sent, r.got)
	f.dups = r.dups
	return f
}

// roundFigures is what a round measured.
type roundFigures struct {
	latencies []time.Duration // of each message that arrived
	lost      int             // published (or not) and never arrived
	dups      int
	span      time.Duration // first publish to last arrival
}

// figuresOf computes a round's figures from each user's publish and
// arrival times (zero: never).
func figuresOf(sent, got []time.Time) roundFigures {
	var f roundFigures
	var first, last time.Time
	for i := range sent {
		if !sent[i].IsZero() && (first.IsZero() || sent[i].Before(first)) {
			first = sent[i]
		}
		if got[i].IsZero() || sent[i].IsZero() {
			f.lost++
			continue
		}
		f.latencies = append(f.latencies, got[i].Sub(sent[i]))
		if got[i].After(last) {
			last = got[i]
		}
	}
	if !first.IsZero() && !last.IsZero() {
		f.span = last.Sub(first)
	}
	return f
}

// forEach calls fn for 0..n-1 from peerPublishers goroutines and returns
// how many calls failed and the first error.
func forEach(ctx context.Context, n int, fn func(context.Context, int) error) (int64, error) {
	var (
		next, errs atomic.Int64
		first      error
		once       sync.Once
		wg         sync.WaitGroup
	)
	for range min(peerPublishers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errs.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return errs.Load(), first
}
