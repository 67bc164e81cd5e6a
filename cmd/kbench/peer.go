package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// The peer scenario (issue 20, item 3) runs kchat's gateway and Centrifugo
// side by side in the same run, on loopback: (a) the resident memory an
// idle WebSocket adds to each server, at wsConns connections; (b) the time
// a message takes from the backend's publish call to the user's socket,
// for 1,000 users with one socket each (peerSizes). Centrifugo: the server HTTP
// API's publish to each user's personal channel (memory engine). kchat: a
// signed answer written to the answer topic (kchat's own Kafka client and
// publisher, acks=all), read by the gateway's feed, checked against the
// session in Redis and written to the socket.
const (
	// peerPublishers is how many goroutines publish a round's messages,
	// each one call at a time (a backend with that many workers): the
	// same for both servers.
	peerPublishers = 32
	// peerDeliveryWait bounds how long a round waits for its messages.
	peerDeliveryWait = 30 * time.Second
)

// peerSizes are the delivery runs' users and measured rounds.
func (b *bench) peerSizes() (users, rounds int) {
	if b.cfg.Short {
		return 200, 2
	}
	return 1000, 5
}

// PeerResult holds the peer scenario's raw figures.
type PeerResult struct {
	// Skipped says why the scenario did not run (Centrifugo could not be
	// built, outside CI); no figure is set then.
	Skipped           string  `json:"skipped,omitempty"`
	CentrifugoVersion string  `json:"centrifugo_version,omitempty"`
	Connections       int     `json:"idle_connections"`
	Users             int     `json:"users"`
	Rounds            int     `json:"rounds"`
	Publishers        int     `json:"publishers"`
	TextBytes         int     `json:"text_bytes"`
	Kchat             PeerRun `json:"kchat"`
	Centrifugo        PeerRun `json:"centrifugo"`
	// CentrifugoSmallBuffers is the idle run of a second Centrifugo with
	// kchat's socket buffers (centrifugoSettings.SmallBuffers).
	CentrifugoSmallBuffers MemoryRun `json:"centrifugo_small_buffers_idle"`
}

// PeerRun is one server's figures.
type PeerRun struct {
	Idle MemoryRun `json:"idle"`
	// Delivery is each message's time from its publish call to its
	// arrival on the user's socket, over the measured rounds.
	Delivery Spread `json:"delivery"`
	// RoundMs is each measured round's time from its first publish call
	// to its last arrival.
	RoundMs       []float64 `json:"round_ms"`
	Delivered     int64     `json:"delivered"`
	Lost          int64     `json:"lost"`
	Duplicates    int64     `json:"duplicates"`
	PublishErrors int64     `json:"publish_errors"`
	FirstErr      string    `json:"first_error,omitempty"`
	// ServerCPU is the server process's CPU per delivered message over
	// the measured rounds, in µs (kchat: the gateway alone; the broker
	// and Redis it reads are not counted).
	ServerCPU float64 `json:"server_cpu_us_per_message"`
}

func (b *bench) runPeer(ctx context.Context) (*PeerResult, error) {
	users, rounds := b.peerSizes()
	res := &PeerResult{Connections: b.p.wsConns, Users: users, Rounds: rounds, Publishers: peerPublishers, TextBytes: b.p.messageBytes}
	bin, err := buildCentrifugo(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("CI is set: Centrifugo must build: %w", err)
		}
		b.logf("peer: SKIPPED, Centrifugo could not be built: %v", err)
		return &PeerResult{Skipped: "Centrifugo could not be built: " + err.Error()}, nil
	}
	res.CentrifugoVersion = centrifugoVersionOf(bin)
	if err := ensureOpenFiles(uint64(max(b.p.wsConns, 2*users) + 1024)); err != nil {
		return nil, err
	}

	prefix := b.prefix("peer")
	env := b.serviceEnv(prefix)
	// kbench writes the answers, as the answerer would, with kchat's own
	// client and publisher, on the topics the answerer would create.
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix, kcfg.ClientID = b.brokers, prefix, "kbench-peer"
	cl, err := kafka.NewClient(kcfg, b.quietLog, nil)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := kafka.NewTopicAdmin(cl, kcfg, b.quietLog, append(kafka.PipelineTopics(kcfg), kafka.StreamTopics(kcfg)...)...).EnsureTopics(ctx); err != nil {
		return nil, err
	}
	key, err := domain.NewAnswerKey([]byte(envValue(env, "KCHAT_ANSWER_KEY")))
	if err != nil {
		return nil, err
	}
	rcfg := redis.DefaultConfig()
	rcfg.URL, rcfg.KeyPrefix = b.cfg.RedisURL, prefix
	sessions, err := redis.NewSessions(rcfg)
	if err != nil {
		return nil, err
	}
	defer sessions.Close()
	auth := newSessionAuth()
	gateway, err := b.bins.start(ctx, b.logDir, "gateway", "KCHAT_GATEWAY_ADDR",
		append(append(env, "KCHAT_QUERY_PUBLISHER=kafka"), auth.env(b.p.wsConns)...)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = gateway.stop() }()
	cf, err := startCentrifugo(ctx, bin, b.tmp, b.logDir, false)
	if err != nil {
		return nil, err
	}
	defer cf.stop()
	kURL := "ws" + strings.TrimPrefix(gateway.url, "http") + "/ws"
	dialK := func(onAnswer func(*kchatUser, string, time.Time)) func(context.Context, int) (*kchatUser, error) {
		return func(ctx context.Context, i int) (*kchatUser, error) {
			header, err := auth.header(i)
			if err != nil {
				return nil, err
			}
			return dialKchatUser(ctx, kURL, i, header, onAnswer)
		}
	}
	dialC := func(cf *centrifugoProc) func(func(int, json.RawMessage, time.Time)) func(context.Context, int) (*cfConn, error) {
		return func(onPub func(int, json.RawMessage, time.Time)) func(context.Context, int) (*cfConn, error) {
			return func(ctx context.Context, i int) (*cfConn, error) {
				user := fmt.Sprintf("kbench-%d", i)
				token, err := centrifugoToken(cf.settings.TokenSecret, user)
				if err != nil {
					return nil, err
				}
				return dialCentrifugo(ctx, cf.wsURL(), i, user, token, onPub)
			}
		}
	}

	b.logf("peer: %d idle connections to the kchat gateway", b.p.wsConns)
	if res.Kchat.Idle, err = idlePeer(ctx, gateway.pid(), b.p.wsConns, dialK(nil)); err != nil {
		return nil, fmt.Errorf("kchat idle: %w", err)
	}
	b.logf("peer: %d idle connections to Centrifugo %s", b.p.wsConns, res.CentrifugoVersion)
	if res.Centrifugo.Idle, err = idlePeer(ctx, cf.pid(), b.p.wsConns, dialC(cf)(nil)); err != nil {
		return nil, fmt.Errorf("centrifugo idle: %w", err)
	}
	b.logf("peer: %d idle connections to Centrifugo %s with kchat's socket buffers", b.p.wsConns, res.CentrifugoVersion)
	small, err := startCentrifugo(ctx, bin, b.tmp, b.logDir, true)
	if err != nil {
		return nil, err
	}
	res.CentrifugoSmallBuffers, err = idlePeer(ctx, small.pid(), b.p.wsConns, dialC(small)(nil))
	small.stop()
	if err != nil {
		return nil, fmt.Errorf("centrifugo idle, small buffers: %w", err)
	}

	b.logf("peer: delivery to %d users, a warm-up round and %d measured rounds each", users, rounds)
	text := strings.Repeat("x", b.p.messageBytes)
	kside, closeK, err := kchatSide(ctx, kafka.NewPublisher(cl, kcfg), key, sessions, gateway.pid(), users, text, dialK)
	if err != nil {
		return nil, err
	}
	defer closeK()
	cside, closeC, err := centrifugoSide(ctx, cf, users, text, dialC(cf))
	if err != nil {
		return nil, err
	}
	defer closeC()
	for _, s := range []*peerSide{kside, cside} {
		if err := s.round(ctx, 0, false); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	for r := 1; r <= rounds; r++ {
		order := []*peerSide{kside, cside}
		if r%2 == 0 { // alternate who goes first, so that neither always follows the other
			slices.Reverse(order)
		}
		for _, s := range order {
			if err := s.round(ctx, r, true); err != nil {
				return nil, fmt.Errorf("%s round %d: %w", s.name, r, err)
			}
		}
	}
	kside.finish(&res.Kchat)
	cside.finish(&res.Centrifugo)
	b.logf("peer: delivery p50 kchat %.2f ms, Centrifugo %.2f ms; lost %d and %d", res.Kchat.Delivery.P50, res.Centrifugo.Delivery.P50, res.Kchat.Lost, res.Centrifugo.Lost)
	return res, nil
}

// kchatSide opens the users' sockets to the gateway. Each round, every
// user asks a question and kbench, in the answerer's place, records it in
// the session as the retrieve stage does (an answer is delivered only if
// it replies to a question its session records, asked by its owner); then
// it writes each question's answer to the answer topic, signed with the
// scenario's KCHAT_ANSWER_KEY, as the generate stage would.
func kchatSide(ctx context.Context, pub *kafka.Publisher, key *domain.AnswerKey, sessions ports.SessionStore, pid, users int, text string,
	dial func(func(*kchatUser, string, time.Time)) func(context.Context, int) (*kchatUser, error),
) (*peerSide, func(), error) {
	s := &peerSide{name: "kchat", pid: pid, users: users, lat: newLatencies()}
	conns, err := dialAll(ctx, users, dial(func(u *kchatUser, replyTo string, at time.Time) {
		if round, ok := u.answers(replyTo); ok {
			s.deliver(round, u.i, at)
		}
	}))
	if err != nil {
		return nil, nil, err
	}
	s.prepare = func(ctx context.Context, round int) error {
		_, err := forEach(ctx, users, func(ctx context.Context, i int) error {
			u := conns[i]
			if err := u.ask(ctx, round); err != nil {
				return err
			}
			turn := domain.Turn{Role: domain.RoleUser, MessageID: u.currentQuestion(), Text: questions[0], At: time.Now().UTC()}
			_, err := sessions.Record(ctx, u.session, u.user, turn, domain.PromptHistoryTurns+2)
			return err
		})
		return err
	}
	s.publish = func(ctx context.Context, _, i int) error {
		u := conns[i]
		q := u.currentQuestion()
		m := key.Sign(domain.Message{
			MessageID: domain.DerivedID(q, "answer"), SessionID: u.session, UserID: u.user, Type: domain.TypeAnswer,
			Text: text, ReplyTo: q, CreatedAt: time.Now(),
		})
		_, err := pub.Publish(ctx, m)
		return err
	}
	return s, func() { closeAll(conns) }, nil
}

// centrifugoSide opens the users' connections to Centrifugo; each round
// publishes a message to every user's personal channel through the
// server API, one call per message.
func centrifugoSide(ctx context.Context, cf *centrifugoProc, users int, text string,
	dial func(func(int, json.RawMessage, time.Time)) func(context.Context, int) (*cfConn, error),
) (*peerSide, func(), error) {
	s := &peerSide{name: "centrifugo", pid: cf.pid(), users: users, lat: newLatencies()}
	conns, err := dialAll(ctx, users, dial(func(i int, data json.RawMessage, at time.Time) {
		var m peerMessage
		if json.Unmarshal(data, &m) == nil {
			s.deliver(m.Round, i, at)
		}
	}))
	if err != nil {
		return nil, nil, err
	}
	s.publish = func(ctx context.Context, round, i int) error {
		data, err := json.Marshal(peerMessage{Round: round, Text: text})
		if err != nil {
			return err
		}
		return cf.publish(ctx, personalChannel(fmt.Sprintf("kbench-%d", i)), data)
	}
	return s, func() { closeAll(conns) }, nil
}

// peerMessage is the data published to Centrifugo.
type peerMessage struct {
	Round int    `json:"round"`
	Text  string `json:"text"`
}

// ensureOpenFiles raises this process's open-file limit to at least n (up
// to the hard limit), so that the load generator can hold every
// connection; the servers it starts inherit it.
func ensureOpenFiles(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	if lim.Max < n {
		return fmt.Errorf("the open-file limit is %d (hard %d); the peer scenario needs %d: raise it (ulimit -n)", lim.Cur, lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit to %d: %w", n, err)
	}
	return nil
}

// envValue is name's value in env (NAME=value lines), or "".
func envValue(env []string, name string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
