package httpapi

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/goccy/go-json"
)

// jsonFormat is huma's JSON format (no HTML escaping, a trailing newline)
// on goccy/go-json, which decodes and encodes request and response bodies
// at a fraction of encoding/json's cost. A body is first checked to be
// strict JSON (RFC 7493: valid UTF-8 and no duplicate member names, which
// decoders resolve differently: "type":"query","type":"answer" must not
// reach the answer topic), and a rejected body gets a message that names
// the problem without the server's Go types.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	},
	Unmarshal: unmarshalStrict,
}

func unmarshalStrict(data []byte, v any) error {
	if !jsontext.Value(data).IsValid() {
		_, err := jsontext.NewDecoder(bytes.NewReader(data)).ReadValue()
		return errors.New("invalid JSON: " + strings.TrimPrefix(fmt.Sprint(err), "jsontext: "))
	}
	if err := json.Unmarshal(data, v); err != nil {
		// Decoded again by encoding/json, whose errors say more than goccy's.
		return clientError(stdjson.Unmarshal(data, v))
	}
	return nil
}

// clientError rewrites a decoding error for the client: the field and what
// it should hold, not the server's Go types.
func clientError(err error) error {
	var typeErr *stdjson.UnmarshalTypeError
	var syntaxErr *stdjson.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("invalid JSON: %s must not be a %s", typeErr.Field, typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Errorf("invalid JSON: the body must not be a %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at byte %d", syntaxErr.Offset)
	default:
		return errors.New("invalid JSON")
	}
}
