package kafka

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression is the codec kchat's clients compress the record batches they
// produce with (KCHAT_KAFKA_COMPRESSION). Only ParseCompression and the
// variables below make one, so a client never meets an unknown codec; the
// zero value is DefaultCompression. Readers must be able to decode it:
// kafka-python without its codec extras reads only none and gzip
// (docs/design.md, "Kafka clients").
type Compression struct {
	name string
	typ  kgo.CompressionCodecType
}

// The codecs Kafka defines, by their KCHAT_KAFKA_COMPRESSION names.
var (
	CompressionNone   = Compression{"none", kgo.CodecNone}
	CompressionGzip   = Compression{"gzip", kgo.CodecGzip}
	CompressionSnappy = Compression{"snappy", kgo.CodecSnappy}
	CompressionLz4    = Compression{"lz4", kgo.CodecLz4}
	CompressionZstd   = Compression{"zstd", kgo.CodecZstd}
)

// DefaultCompression is KCHAT_KAFKA_COMPRESSION's default (keep its env
// tag in Config the same): gzip stores kchat's records in 0.27-0.63x the
// bytes of none, nearly as few as zstd, and is the one codec besides none
// that old Python readers decode (docs/design.md, "Kafka clients").
var DefaultCompression = CompressionGzip

// Compressions lists every codec, in Kafka's order of codec ids.
func Compressions() []Compression {
	return []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLz4, CompressionZstd}
}

// ParseCompression returns the codec named s (any case), or an error naming
// KCHAT_KAFKA_COMPRESSION and the names it takes.
func ParseCompression(s string) (Compression, error) {
	for _, c := range Compressions() {
		if strings.EqualFold(strings.TrimSpace(s), c.name) {
			return c, nil
		}
	}
	names := make([]string, 0, 5)
	for _, c := range Compressions() {
		names = append(names, c.name)
	}
	return Compression{}, fmt.Errorf("KCHAT_KAFKA_COMPRESSION: %q is not a codec: want one of %s", s, strings.Join(names, ", "))
}

// orDefault is c, or DefaultCompression for the zero value.
func (c Compression) orDefault() Compression {
	if c.name == "" {
		return DefaultCompression
	}
	return c
}

// String is the codec's name.
func (c Compression) String() string { return c.orDefault().name }

// UnmarshalText parses the codec's name; the env loader calls it.
func (c *Compression) UnmarshalText(b []byte) error {
	parsed, err := ParseCompression(string(b))
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

// MarshalText is the codec's name.
func (c Compression) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// CodecType is the codec's id in a batch's attributes (0 none, 1 gzip,
// 2 snappy, 3 lz4, 4 zstd).
func (c Compression) CodecType() kgo.CompressionCodecType { return c.orDefault().typ }

// Codec is franz-go's codec for c. franz-go sends a batch uncompressed when
// compressing would not make it smaller (a single short record, say), so a
// batch's attributes may say none whatever the setting.
func (c Compression) Codec() kgo.CompressionCodec {
	switch c.CodecType() {
	case kgo.CodecGzip:
		return kgo.GzipCompression()
	case kgo.CodecSnappy:
		return kgo.SnappyCompression()
	case kgo.CodecLz4:
		return kgo.Lz4Compression()
	case kgo.CodecZstd:
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}
