package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/proctest"
	"github.com/kchat/kchat/internal/testenv"
)

// A service binary keeps /metrics and the profiles off its API, on its
// admin listener (issue 13, item 14), and says so when it still finds the
// variable that listener replaced.
func TestAdminListener(t *testing.T) {
	admin := proctest.FreeAddr(t)
	p := proctest.Start(t, proctest.Build(t, "github.com/kchat/kchat/cmd/producer"), "KCHAT_PRODUCER_ADDR",
		"KCHAT_KAFKA_BROKERS="+strings.Join(kafkatest.Fake(t), ","), "KCHAT_TOPIC_PREFIX="+testenv.Prefix("admin"),
		"KCHAT_ADMIN_ADDR="+admin, "KCHAT_PPROF_ADDR=127.0.0.1:6060")
	fetch := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if status, _ := fetch(p.URL + path); status != http.StatusNotFound {
			t.Errorf("API %s: %d, want 404", path, status)
		}
	}
	if status, body := fetch("http://" + admin + "/metrics"); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("admin /metrics: %d %.200s", status, body)
	}
	if status, _ := fetch("http://" + admin + "/debug/pprof/cmdline"); status != http.StatusOK {
		t.Errorf("admin /debug/pprof/cmdline: %d", status)
	}
	if logs := p.Logs(); !strings.Contains(logs, "KCHAT_PPROF_ADDR is no longer read") {
		t.Errorf("KCHAT_PPROF_ADDR set and no warning:\n%s", logs)
	}
}
