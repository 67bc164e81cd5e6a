package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sessionAuth is how the benchmark's many WebSocket sessions authenticate:
// as a deployment's clients would (docs/security.md, "Gateway trust
// boundaries"), KCHAT_AUTH=token, each session with an HS256 JWT of a user
// of its own (kbench-<i>) in its Authorization header, signed with a secret
// made for the run. The sessions dial from sourceAddrs loopback addresses,
// so the gateway's limits per address are raised to what the run asks of
// it: they are still counted, never binding.
type sessionAuth struct {
	secret string
}

func newSessionAuth() sessionAuth {
	return sessionAuth{secret: rand.Text() + rand.Text()}
}

// env is the gateway's environment for sessions of a run.
func (a sessionAuth) env(sessions int) []string {
	n := strconv.Itoa(sessions)
	return []string{
		"KCHAT_AUTH=token", "KCHAT_AUTH_JWT_SECRET=" + a.secret,
		"KCHAT_WS_MAX_CONNS_PER_ADDR=" + n, "KCHAT_ADDR_RATE=" + n, "KCHAT_ADDR_BURST=" + n,
	}
}

// header is session i's handshake header.
func (a sessionAuth) header(i int) (http.Header, error) {
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": fmt.Sprintf("kbench-%d", i),
		"exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(a.secret))
	if err != nil {
		return nil, err
	}
	return http.Header{"Authorization": {"Bearer " + token}}, nil
}
