package restclient

import (
	"fmt"
	"net/url"
	"time"
)

// Config locates the producer and consumer services. The env tags name the
// KCHAT_* variables a binary loads it from.
type Config struct {
	// ProducerURL is the producer service's base URL.
	ProducerURL string `env:"KCHAT_PRODUCER_URL" envDefault:"http://localhost:8000"`
	// ConsumerURL is the consumer service's base URL.
	ConsumerURL string `env:"KCHAT_CONSUMER_URL" envDefault:"http://localhost:8001"`
	// Timeout bounds a whole call, response body included; past it the
	// caller gets domain.ErrUnavailable or a 503.
	Timeout time.Duration `env:"KCHAT_CLIENT_TIMEOUT" envDefault:"15s"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{
		ProducerURL: "http://localhost:8000",
		ConsumerURL: "http://localhost:8001",
		Timeout:     15 * time.Second,
	}
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	if err := validateBaseURL("KCHAT_PRODUCER_URL", c.ProducerURL); err != nil {
		return err
	}
	if err := validateBaseURL("KCHAT_CONSUMER_URL", c.ConsumerURL); err != nil {
		return err
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > 5*time.Minute {
		return fmt.Errorf("KCHAT_CLIENT_TIMEOUT must be between 100ms and 5m, got %s", c.Timeout)
	}
	return nil
}

func validateBaseURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error echoes the URL, which may hold a password.
		return fmt.Errorf("%s is not a valid URL", name)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("%s must be an http:// or https:// base URL such as http://localhost:8000, got %q", name, u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%s must not have a query or fragment, got %q", name, u.Redacted())
	}
	return nil
}
