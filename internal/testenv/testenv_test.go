package testenv

import (
	"fmt"
	"strings"
	"testing"
)

type recorder struct {
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

func TestMissingServiceFailsUnderCI(t *testing.T) {
	t.Setenv(KafkaVar, "")
	t.Setenv(RedisVar, "")
	t.Setenv("CI", "true")
	for name, get := range map[string]func(TB){
		KafkaVar: func(tb TB) { KafkaBrokers(tb) },
		RedisVar: func(tb TB) { RedisURL(tb) },
	} {
		r := &recorder{}
		get(r)
		if r.skip != "" || !strings.Contains(r.fatal, name) || !strings.Contains(r.fatal, "make services-up") {
			t.Errorf("%s under CI: fatal %q, skip %q; want a failure naming the variable", name, r.fatal, r.skip)
		}
	}
}

func TestMissingServiceSkipsLocally(t *testing.T) {
	t.Setenv(KafkaVar, "")
	t.Setenv("CI", "")
	r := &recorder{}
	KafkaBrokers(r)
	if r.fatal != "" || !strings.Contains(r.skip, KafkaVar) {
		t.Errorf("without CI: fatal %q, skip %q; want a skip naming the variable", r.fatal, r.skip)
	}
}

func TestServiceFound(t *testing.T) {
	t.Setenv(KafkaVar, "127.0.0.1:9092,127.0.0.1:9094")
	t.Setenv("CI", "true")
	r := &recorder{}
	got := KafkaBrokers(r)
	if r.fatal != "" || r.skip != "" || len(got) != 2 || got[1] != "127.0.0.1:9094" {
		t.Errorf("got %v, fatal %q, skip %q", got, r.fatal, r.skip)
	}
}
