package restclient_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/kchat/kchat/adapters/restclient"
)

func TestConfigValidate(t *testing.T) {
	with := func(change func(*restclient.Config)) restclient.Config {
		c := restclient.DefaultConfig()
		change(&c)
		return c
	}
	tests := []struct {
		name string
		give restclient.Config
		want string // a substring of the error; "" for valid
	}{
		{"defaults", restclient.DefaultConfig(), ""},
		{"https with a path", with(func(c *restclient.Config) { c.ProducerURL = "https://api.example.com/producer" }), ""},
		{"no producer", with(func(c *restclient.Config) { c.ProducerURL = "" }), "KCHAT_PRODUCER_URL"},
		{"producer without scheme", with(func(c *restclient.Config) { c.ProducerURL = "localhost:8000" }), "KCHAT_PRODUCER_URL"},
		{"producer with a query", with(func(c *restclient.Config) { c.ProducerURL = "http://producer:8000/?x=1" }), "KCHAT_PRODUCER_URL"},
		{"consumer not http", with(func(c *restclient.Config) { c.ConsumerURL = "kafka://consumer:8001" }), "KCHAT_CONSUMER_URL"},
		{"consumer unparsable", with(func(c *restclient.Config) { c.ConsumerURL = "http://user:s3cret@host:80/%zz" }), "KCHAT_CONSUMER_URL"},
		{"consumer with a password", with(func(c *restclient.Config) { c.ConsumerURL = "ftp://user:s3cret@host" }), "KCHAT_CONSUMER_URL"},
		{"zero timeout", with(func(c *restclient.Config) { c.Timeout = 0 }), "KCHAT_CLIENT_TIMEOUT"},
		{"huge timeout", with(func(c *restclient.Config) { c.Timeout = time.Hour }), "KCHAT_CLIENT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error naming %s", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// TestConfigFromEnv checks that the env tags' defaults are DefaultConfig
// and that each variable is read.
func TestConfigFromEnv(t *testing.T) {
	got, err := env.ParseAs[restclient.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if got != restclient.DefaultConfig() {
		t.Fatalf("from env %+v, want %+v", got, restclient.DefaultConfig())
	}
	t.Setenv("KCHAT_PRODUCER_URL", "http://producer:8000")
	t.Setenv("KCHAT_CONSUMER_URL", "http://consumer:8001")
	t.Setenv("KCHAT_CLIENT_TIMEOUT", "3s")
	got, err = env.ParseAs[restclient.Config]()
	if err != nil {
		t.Fatal(err)
	}
	want := restclient.Config{ProducerURL: "http://producer:8000", ConsumerURL: "http://consumer:8001", Timeout: 3 * time.Second}
	if got != want {
		t.Fatalf("from env %+v, want %+v", got, want)
	}
}
