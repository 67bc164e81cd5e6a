package httpapi

import (
	stdjson "encoding/json"
	"io"

	"github.com/danielgtaylor/huma/v2"
	json "github.com/goccy/go-json"
)

// jsonFormat is huma's JSON format (no HTML escaping, a trailing newline)
// on goccy/go-json, which decodes and encodes request and response bodies
// at a fraction of encoding/json's cost. A body it rejects is decoded again
// by encoding/json, whose messages ("unexpected end of JSON input") say
// more to a client than goccy's.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	},
	Unmarshal: func(data []byte, v any) error {
		if err := json.Unmarshal(data, v); err != nil {
			return stdjson.Unmarshal(data, v)
		}
		return nil
	},
}
