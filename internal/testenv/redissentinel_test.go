package testenv

import (
	"strings"
	"testing"
)

func TestRedisSentinelMissingFailsUnderCIAndSkipsLocally(t *testing.T) {
	for _, unset := range []string{RedisSentinelAddrsVar, RedisSentinelMasterVar} {
		for _, ci := range []string{"true", ""} {
			t.Setenv(RedisSentinelAddrsVar, "127.0.0.1:7110")
			t.Setenv(RedisSentinelMasterVar, "kchat")
			t.Setenv(unset, "")
			t.Setenv("CI", ci)
			r := &recorder{}
			if addrs, master := RedisSentinel(r); addrs != nil || master != "" {
				t.Errorf("%s unset, CI=%q: got %v, %q", unset, ci, addrs, master)
			}
			got, other := r.skip, r.fatal
			if ci != "" {
				got, other = r.fatal, r.skip
			}
			if other != "" || !strings.Contains(got, unset) || !strings.Contains(got, "make redis-sentinel-up") {
				t.Errorf("%s unset, CI=%q: fatal %q, skip %q; want one message naming the variable and make redis-sentinel-up", unset, ci, r.fatal, r.skip)
			}
		}
	}
}

func TestRedisSentinelFound(t *testing.T) {
	t.Setenv(RedisSentinelAddrsVar, "127.0.0.1:7110,127.0.0.1:7111,127.0.0.1:7112")
	t.Setenv(RedisSentinelMasterVar, "kchat")
	t.Setenv("CI", "true")
	r := &recorder{}
	addrs, master := RedisSentinel(r)
	if r.fatal != "" || r.skip != "" || len(addrs) != 3 || addrs[2] != "127.0.0.1:7112" || master != "kchat" {
		t.Errorf("got %v, %q, fatal %q, skip %q", addrs, master, r.fatal, r.skip)
	}
}

func TestSentinelRedisOfPort(t *testing.T) {
	for addr, want := range map[string]int{"127.0.0.1:7100": 0, "localhost:7101": 1} {
		if got, err := SentinelRedisOfPort(addr); err != nil || got != want {
			t.Errorf("SentinelRedisOfPort(%q) = %d, %v; want %d", addr, got, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:7000", "127.0.0.1:7102", "127.0.0.1:7110", "7100", "127.0.0.1:x"} {
		if _, err := SentinelRedisOfPort(addr); err == nil {
			t.Errorf("SentinelRedisOfPort(%q): no error", addr)
		}
	}
}
