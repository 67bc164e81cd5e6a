package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var errNoAck = errors.New("no ack within 30s")

// kchatUser is one user's socket to the gateway in the peer scenario.
type kchatUser struct {
	i             int
	ws            *websocket.Conn
	session, user string
	replies       chan serverFrame // acks and errors, for ask
	done          chan struct{}

	mu       sync.Mutex
	asking   string // the client id of the question asked, until its ack
	askRound int
	question string // the message id of the round's question, from its ack
	round    int
}

var _ peerConn = (*kchatUser)(nil)

// dialKchatUser opens socket i with header, reads its session frame and
// starts a goroutine that reads it until it closes (gorilla answers the
// gateway's pings), calling onAnswer, when not nil, with each answer's
// reply_to and when its frame arrived.
func dialKchatUser(ctx context.Context, url string, i int, header http.Header, onAnswer func(u *kchatUser, replyTo string, at time.Time)) (*kchatUser, error) {
	ws, err := dialSession(ctx, url, i, header, false)
	if err != nil {
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f struct {
		Type      string `json:"type"`
		SessionID string `json:"session_id"`
		UserID    string `json:"user_id"`
	}
	if err := ws.ReadJSON(&f); err != nil || f.Type != "session" || f.SessionID == "" {
		_ = ws.Close()
		return nil, fmt.Errorf("want a session frame, got %+v: %w", f, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	u := &kchatUser{i: i, ws: ws, session: f.SessionID, user: f.UserID, replies: make(chan serverFrame, 4), done: make(chan struct{})}
	go func() {
		defer close(u.done)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			at := time.Now()
			var f serverFrame
			if json.Unmarshal(msg, &f) != nil {
				continue
			}
			switch f.Type {
			case "answer":
				if onAnswer != nil {
					onAnswer(u, f.ReplyTo, at)
				}
			case "ack", "error":
				if f.Type == "ack" {
					u.acked(f)
				}
				select {
				case u.replies <- f:
				default:
				}
			}
		}
	}()
	return u, nil
}

// ask asks round's question and waits for its ack: the gateway has
// recorded it in the session, so that an answer to it is delivered.
func (u *kchatUser) ask(ctx context.Context, round int) error {
	id := "r" + strconv.Itoa(round)
	u.mu.Lock()
	u.asking, u.askRound = id, round
	u.mu.Unlock()
	if err := u.ws.WriteJSON(map[string]string{"type": "query", "id": id, "message": questions[0]}); err != nil {
		return err
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case f := <-u.replies:
			switch {
			case f.ID != id:
			case f.Type == "error":
				return fmt.Errorf("error frame %s: %s", f.Code, f.Message)
			default:
				return nil
			}
		case <-t.C:
			return errNoAck
		case <-u.done:
			return fmt.Errorf("socket %d closed", u.i)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// acked takes the message id of the question asked from its ack, on the
// reader's goroutine: answers read after it are matched to it.
func (u *kchatUser) acked(f serverFrame) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f.ID == u.asking && u.asking != "" {
		u.question, u.round, u.asking = f.MessageID, u.askRound, ""
	}
}

func (u *kchatUser) currentQuestion() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.question
}

// answers says which round an answer replying to replyTo belongs to.
func (u *kchatUser) answers(replyTo string) (int, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.round, replyTo != "" && replyTo == u.question
}

func (u *kchatUser) Close() error { return u.ws.Close() }

func (u *kchatUser) closed() bool {
	select {
	case <-u.done:
		return true
	default:
		return false
	}
}

// idlePeer measures the server's RSS, opens n connections with dial (each
// read by a goroutine that answers the server's pings), lets the server
// settle, measures again, checks that every connection is still open and
// closes them: the memory scenario's method.
func idlePeer[C peerConn](ctx context.Context, pid, n int, dial func(context.Context, int) (C, error)) (MemoryRun, error) {
	var run MemoryRun
	sleep(ctx, time.Second)
	var err error
	if run.RSSBefore, err = rssBytes(pid); err != nil {
		return run, err
	}
	conns, err := dialAll(ctx, n, dial)
	if err != nil {
		return run, err
	}
	defer closeAll(conns)
	sleep(ctx, 3*time.Second) // the server's goroutines park, its allocator settles
	if run.RSSAfter, err = rssBytes(pid); err != nil {
		return run, err
	}
	closed := 0
	for _, c := range conns {
		if c.closed() {
			closed++
		}
	}
	if closed > 0 {
		return run, fmt.Errorf("%d of %d idle connections were closed during the measure", closed, n)
	}
	run.PerConnKiB = float64(run.RSSAfter-run.RSSBefore) / float64(n) / 1024
	return run, ctx.Err()
}

// peerConn is an open connection of the peer scenario.
type peerConn interface {
	io.Closer
	// closed says whether its reader has stopped: the server closed it.
	closed() bool
}

// dialAll opens n connections with dial from 32 goroutines; on an error
// it closes those it opened.
func dialAll[C io.Closer](ctx context.Context, n int, dial func(context.Context, int) (C, error)) ([]C, error) {
	conns := make([]C, n)
	ok := make([]bool, n)
	_, err := forEach(ctx, n, func(ctx context.Context, i int) error {
		c, err := dial(ctx, i)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i], ok[i] = c, true
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		for i, c := range conns {
			if ok[i] {
				_ = c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

func closeAll[C io.Closer](conns []C) {
	for _, c := range conns {
		_ = c.Close()
	}
}
