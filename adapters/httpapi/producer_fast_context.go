package httpapi

import (
	"context"
	"io"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// The contexts of producer_fast.go's single-pass route.

// decodedRequest is a request whose body was decoded: the huma context the
// operation without a body is served with, and also the context.Context its
// handler is given, which holds the body for decodedBody. One allocation
// where huma.WithValue and a new body took three.
type decodedRequest[B any] struct {
	wrapped
	parent context.Context
	body   B
}

func (r *decodedRequest[B]) Context() context.Context                { return r }
func (r *decodedRequest[B]) Unwrap() huma.Context                    { return r.wrapped }
func (r *decodedRequest[B]) Deadline() (deadline time.Time, ok bool) { return r.parent.Deadline() }
func (r *decodedRequest[B]) Done() <-chan struct{}                   { return r.parent.Done() }
func (r *decodedRequest[B]) Err() error                              { return r.parent.Err() }

func (r *decodedRequest[B]) Value(key any) any {
	if _, ok := key.(decodedKey); ok {
		return &r.body
	}
	return r.parent.Value(key)
}

// replayContext serves a body that was read already.
type replayContext struct {
	wrapped
	body io.Reader
}

// wrapped is huma.Context under another name: embedded as huma.Context,
// its field would hide the interface's Context method.
type wrapped huma.Context

func (c replayContext) BodyReader() io.Reader { return c.body }
func (c replayContext) Unwrap() huma.Context  { return c.wrapped }
