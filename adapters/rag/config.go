package rag

import (
	"fmt"
	"os"
)

// MaxTopK bounds how many passages a caller may ask for.
const MaxTopK = 50

// Config configures the knowledge base. The env tags name the KCHAT_*
// variables a binary loads it from.
type Config struct {
	// Dir holds the knowledge base: every .md, .markdown and .txt file under
	// it, recursively. Empty means the knowledge base embedded in the binary.
	Dir string `env:"KCHAT_KB_DIR"`
	// TopK is how many passages Retrieve returns when the caller passes k <= 0.
	TopK int `env:"KCHAT_RAG_TOP_K" envDefault:"3"`
}

// DefaultConfig is the configuration with every default applied.
func DefaultConfig() Config {
	return Config{TopK: 3}
}

// Validate reports the first setting that is wrong, naming its variable.
func (c Config) Validate() error {
	if c.TopK < 1 || c.TopK > MaxTopK {
		return fmt.Errorf("KCHAT_RAG_TOP_K must be between 1 and %d, got %d", MaxTopK, c.TopK)
	}
	if c.Dir == "" {
		return nil
	}
	info, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("KCHAT_KB_DIR: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("KCHAT_KB_DIR: %s is not a directory", c.Dir)
	}
	return nil
}
