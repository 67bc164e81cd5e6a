package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// The gateway's fault scenarios (issue 14, Build 3 g and h; docs/reliability.md,
// "The gateway's fault scenarios") run a chat deployment on the 3-broker
// test cluster (chatRig), visitors chatting over WebSockets (chatLoad,
// chaos_chat_test.go), and judge every question with the history checker
// (chaos_check_test.go).

// chatRig is a chat deployment on the test cluster: topics under a prefix
// of its own (deleted when the test ends), an answerer and a gateway as
// processes of the real binaries, sessions in the Redis at redisURL under
// the same prefix. The gateway publishes queries to Kafka itself.
type chatRig struct {
	t       *testing.T
	brokers []string
	prefix  string
	gwEnv   []string

	mu    sync.Mutex
	gw    *proctest.Proc
	next  chan struct{} // closed when gw is replaced
	procs []*proctest.Proc
}

func newChatRig(t *testing.T, tag, redisURL string, gatewayEnv ...string) *chatRig {
	t.Helper()
	brokers := testenv.ClusterBrokers(t)
	prefix := testenv.Prefix(tag)
	t.Cleanup(func() { kafkatest.DeleteTopics(t, brokers, prefix) })
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix, kcfg.ReplicationFactor = brokers, prefix, 3
	kcfg.Retention = time.Hour // nothing of the run ages out before it is read back
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(kcfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.NewTopicAdmin(cl, kcfg, log, append(kafka.PipelineTopics(kcfg), kafka.DeadLetterTopics(kcfg)...)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	common := []string{
		"KCHAT_KAFKA_BROKERS=" + strings.Join(brokers, ","), "KCHAT_TOPIC_PREFIX=" + prefix,
		"KCHAT_TOPIC_REPLICATION_FACTOR=3", "KCHAT_TOPIC_RETENTION=1h",
		"KCHAT_REDIS_URL=" + redisURL, "KCHAT_REDIS_PREFIX=" + prefix,
		// Every turn of a run stays in its session, so the history can be
		// checked whole.
		"KCHAT_SESSION_MAX_TURNS=1000",
		"KCHAT_ANSWER_KEY=" + testAnswerKey, "KCHAT_COOKIE_KEY=" + testCookieKey,
		"KCHAT_ADMIN_ADDR=127.0.0.1:0",
	}
	r := &chatRig{t: t, brokers: brokers, prefix: prefix, gwEnv: append(common, gatewayEnv...), next: make(chan struct{})}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range r.procs {
			if lines := strings.Split(strings.TrimSpace(p.Logs()), "\n"); p.Logs() != "" {
				t.Logf("%s logged (last %d lines):\n%s", p.URL, min(len(lines), 30), strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	r.procs = append(r.procs, proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/answerer"), "KCHAT_ANSWERER_ADDR",
		append(common, "KCHAT_ANSWERER_GROUP="+prefix+"answerer", "KCHAT_ANSWERER_INSTANCE=chaos")...))
	r.gw = r.startGateway()
	return r
}

func (r *chatRig) startGateway() *proctest.Proc {
	r.t.Helper()
	p := proctest.Start(r.t, proctest.Build(r.t, "github.com/kchat/kchat/cmd/gateway"), "KCHAT_GATEWAY_ADDR", r.gwEnv...)
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p
}

// gateway returns the gateway process clients use now, and a channel
// closed once another replaces it.
func (r *chatRig) gateway() (*proctest.Proc, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gw, r.next
}

// replaceGateway starts another gateway process (the last one has
// stopped) and points the clients at it.
func (r *chatRig) replaceGateway() *proctest.Proc {
	r.t.Helper()
	p := r.startGateway()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gw = p
	close(r.next)
	r.next = make(chan struct{})
	return p
}

// socket is an open chat WebSocket whose frames a goroutine of its own
// reads onto a channel, so that a client can wait for a frame and a timer
// at once (a gorilla/websocket read that timed out leaves the connection
// unusable).
type socket struct {
	conn   *websocket.Conn
	frames chan frame
	closed chan struct{} // closed once reading ended
	quit   chan struct{}
	err    error // why reading ended; set before closed is closed
	gone   <-chan struct{}
}

// dialSocket opens a socket as visitor v to the gateway now running, with
// query (a resume's session_id and after). It returns the HTTP status of a
// refused upgrade.
func dialSocket(r *chatRig, v *visitor, query string) (*socket, int, error) {
	gw, gone := r.gateway()
	conn, resp, err := v.dialer.Dial(wsURL(gw, query), nil)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, status, err
	}
	s := &socket{conn: conn, frames: make(chan frame, 256), closed: make(chan struct{}), quit: make(chan struct{}), gone: gone}
	go s.read()
	return s, status, nil
}

func (s *socket) read() {
	for {
		var f frame
		if err := s.conn.ReadJSON(&f); err != nil {
			s.err = err
			close(s.closed)
			return
		}
		select {
		case s.frames <- f:
		case <-s.quit:
			return
		}
	}
}

// next returns the next frame; closed once the socket closed and every
// frame that came before was taken, timedOut when deadline was closed
// first.
func (s *socket) next(deadline <-chan struct{}) (f frame, closed, timedOut bool) {
	select {
	case f = <-s.frames:
		return f, false, false
	case <-s.closed:
		select {
		case f = <-s.frames:
			return f, false, false
		default:
			return nil, true, false
		}
	case <-deadline:
		return nil, false, true
	}
}

// closeCode is the close code the server sent, or -1 when the socket
// ended without a close frame.
func (s *socket) closeCode() int {
	var ce *websocket.CloseError
	if errors.As(s.err, &ce) {
		return ce.Code
	}
	return -1
}

// close closes the socket from the client's side.
func (s *socket) close() {
	close(s.quit)
	_ = s.conn.Close()
}

// httpClient is visitor v's HTTP client: its cookies (its identity) and its
// address.
func httpClient(v *visitor) *http.Client {
	return &http.Client{Jar: v.dialer.Jar, Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: v.dialer.NetDialContext}}
}

// sessionTurns returns the ids of the turns of session as its owner v
// reads them (GET /sessions/{id}/history), in order.
func sessionTurns(ctx context.Context, r *chatRig, v *visitor, session string) ([]string, int, error) {
	gw, _ := r.gateway()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/sessions/"+session+"/history", nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := httpClient(v).Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Turns []struct {
			MessageID string `json:"message_id"`
		} `json:"turns"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, resp.StatusCode, err
	}
	ids := make([]string, len(out.Turns))
	for i, t := range out.Turns {
		ids[i] = t.MessageID
	}
	return ids, resp.StatusCode, nil
}
