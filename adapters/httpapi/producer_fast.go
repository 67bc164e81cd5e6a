package httpapi

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/goccy/go-json"
)

// POST /messages is kchat's busiest route. huma checks a body against its
// schema by decoding it into a map, then decodes it again into the input
// struct, and jsonFormat checks it is strict JSON before each decode: four
// passes over every body, a third of the handler's time (docs/performance.md,
// "Where the time goes (issue 20)"). decodedRoute reads a body once instead:
// a strict JSON decoder walks it, checks each member against the same schema
// huma validates with, and fills the struct. A body it is sure huma would
// accept goes to the same operation registered without a body on a private
// API, where huma still parses and validates the headers and writes the
// response. Every other body, and every body it is unsure of (a member it
// does not check itself, such as citations, a null, a name in another case,
// an escaped name), goes down huma's own path untouched, so a rejected body
// gets huma's problem details, byte for byte (TestDecodedRouteAnswersAsHuma
// and FuzzDecodedRoute compare both paths).

// bodyReadTimeout is how long a POST /messages may take to send its body,
// huma's default, on both paths.
const bodyReadTimeout = 5 * time.Second

// decodedRoute is the single-pass path of one operation whose body, of
// type B, is a flat JSON object of strings and free-form objects.
type decodedRoute[B any] struct {
	shape    *bodyShape         // nil: every request takes huma's path
	serveOne func(huma.Context) // the operation without a body, on a private API
	maxBytes int64              // the operation's body limit
}

type decodedKey struct{}

// registerDecoded registers op on api with full as its handler, and the
// same operation without its body, with decoded as the handler, on a
// private API that decodedRoute serves valid bodies through. B is the type
// of I's Body; decoded finds the body with decodedBody.
func registerDecoded[I, B, H, O any](api huma.API, op huma.Operation, full func(context.Context, *I) (*O, error), decoded func(context.Context, *H) (*O, error)) *decodedRoute[B] {
	route := &decodedRoute[B]{}
	op.Middlewares = append(op.Middlewares, route.serve)
	op.BodyReadTimeout = bodyReadTimeout
	huma.Register(api, op, full)

	body, ok := reflect.TypeFor[I]().FieldByName("Body")
	if !ok || body.Type != reflect.TypeFor[B]() {
		panic(fmt.Sprintf("registerDecoded: %s's Body is not a %s", reflect.TypeFor[I](), reflect.TypeFor[B]()))
	}
	registered := registeredOperation(api.OpenAPI(), op)
	if registered == nil || registered.RequestBody == nil || registered.RequestBody.Content["application/json"] == nil {
		return route
	}
	schemas := api.OpenAPI().Components.Schemas
	route.shape = newBodyShape(schemas, registered.RequestBody.Content["application/json"].Schema, body.Type)
	route.maxBytes = op.MaxBodyBytes

	capture := &captureAdapter{}
	cfg := apiConfig(op.OperationID)
	cfg.OpenAPIPath = ""
	private := huma.NewAPI(cfg, capture)
	op.Middlewares = nil
	huma.Register(private, op, decoded)
	route.serveOne = capture.handler
	if route.serveOne == nil {
		route.shape = nil
	}
	return route
}

// registeredOperation is op as api documents it (nil if it does not).
func registeredOperation(api *huma.OpenAPI, op huma.Operation) *huma.Operation {
	item := api.Paths[op.Path]
	if item == nil {
		return nil
	}
	switch op.Method {
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	}
	return nil
}

// decodedBody is the body decodedRoute decoded for the request of ctx.
func decodedBody[B any](ctx context.Context) (B, bool) {
	b, ok := ctx.Value(decodedKey{}).(*B)
	if !ok {
		var zero B
		return zero, false
	}
	return *b, true
}

// serve is the operation's huma middleware.
func (r *decodedRoute[B]) serve(ctx huma.Context, next func(huma.Context)) {
	if r.shape == nil {
		next(ctx)
		return
	}
	// huma takes a missing Content-Type for JSON; anything but plain JSON
	// (parameters, another type) is huma's to judge.
	if ct := ctx.Header("Content-Type"); ct != "" && ct != "application/json" {
		next(ctx)
		return
	}
	d := decoders.Get().(*bodyDecoder)
	defer d.release()
	_ = ctx.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	d.limit = io.LimitedReader{R: ctx.BodyReader(), N: r.maxBytes}
	n, err := d.buf.ReadFrom(&d.limit)
	if err != nil || n >= r.maxBytes {
		// huma reads it again from the start, and answers the error.
		next(replayContext{ctx, io.MultiReader(bytes.NewReader(d.buf.Bytes()), ctx.BodyReader())})
		return
	}
	body := d.buf.Bytes() // decoding drains d.buf, not the bytes under it
	req := &decodedRequest[B]{wrapped: ctx, parent: ctx.Context()}
	if !r.shape.decode(d, reflect.ValueOf(&req.body).Elem()) {
		next(replayContext{ctx, bytes.NewReader(body)})
		return
	}
	r.serveOne(req)
}

// captureAdapter keeps the handler of the one operation registered on it.
type captureAdapter struct{ handler func(huma.Context) }

func (a *captureAdapter) Handle(_ *huma.Operation, h func(huma.Context)) { a.handler = h }

func (a *captureAdapter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotFound) // never mounted
}

// bodyDecoder is a request's body and the strict decoder that reads it.
type bodyDecoder struct {
	limit io.LimitedReader
	buf   bytes.Buffer
	dec   jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(bodyDecoder) }}

func (d *bodyDecoder) release() {
	if d.buf.Cap() > 64<<10 {
		return // let a large body's buffer go
	}
	d.limit.R = nil
	d.buf.Reset()
	decoders.Put(d)
}

// bodyShape is what decode checks a body against, taken from the schema
// huma validates it with: a JSON object that names only its properties,
// has the required ones, and whose members are strings (with length and
// enum limits) or free-form objects. A property with any other schema is
// "unchecked": a body that has it goes to huma.
type bodyShape struct {
	members  map[string]member // by the member's name as it is written, quotes included
	required uint64            // bits of the required members
}

type memberKind int

const (
	memberUnchecked memberKind = iota
	memberString
	memberObject
)

type member struct {
	kind     memberKind
	bit      uint64
	field    []int // the struct field it decodes into
	min, max int   // in characters (runes), as huma counts; -1: no limit
	enum     []string
}

// newBodyShape reads s (the request body's schema, for a struct of type t);
// nil if it holds anything decode cannot judge the way huma would.
func newBodyShape(r huma.Registry, s *huma.Schema, t reflect.Type) *bodyShape {
	for s != nil && s.Ref != "" {
		s = r.SchemaFromRef(s.Ref)
	}
	if s == nil || t.Kind() != reflect.Struct || len(s.Properties) > 64 {
		return nil
	}
	top := *s
	if addl, ok := top.AdditionalProperties.(bool); !ok || addl || top.Type != huma.TypeObject {
		return nil // unknown members must be refused
	}
	top.Type, top.Properties, top.Required, top.AdditionalProperties = "", nil, nil, nil
	if !onlyNotes(top) {
		return nil
	}
	fields := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = f.Index
		}
	}
	shape := &bodyShape{members: map[string]member{}}
	bit := uint64(1)
	for name, ps := range s.Properties {
		quoted, err := stdjson.Marshal(name)
		idx, ok := fields[name]
		if err != nil || !ok {
			return nil
		}
		m := member{bit: bit, field: idx, min: -1, max: -1}
		bit <<= 1
		m.kind = checkedKind(ps, t.FieldByIndex(idx).Type, &m)
		if m.kind == memberUnchecked {
			m.min, m.max, m.enum = -1, -1, nil
		}
		shape.members[string(quoted)] = m
	}
	for _, name := range s.Required {
		quoted, _ := stdjson.Marshal(name)
		m, ok := shape.members[string(quoted)]
		if !ok {
			return nil
		}
		shape.required |= m.bit
	}
	return shape
}

// checkedKind says how decode checks a property of schema ps decoding into
// a field of type ft, filling m's limits.
func checkedKind(ps *huma.Schema, ft reflect.Type, m *member) memberKind {
	if ps == nil || ps.Ref != "" {
		return memberUnchecked
	}
	c := *ps
	switch {
	case c.Type == huma.TypeString && ft.Kind() == reflect.String:
		if c.MinLength != nil {
			m.min = *c.MinLength
		}
		if c.MaxLength != nil {
			m.max = *c.MaxLength
		}
		for _, e := range c.Enum {
			s, ok := e.(string)
			if !ok {
				return memberUnchecked
			}
			m.enum = append(m.enum, s)
		}
		c.Type, c.MinLength, c.MaxLength, c.Enum = "", nil, nil, nil
		if onlyNotes(c) {
			return memberString
		}
	case c.Type == huma.TypeObject && len(c.Properties) == 0 && ft == reflect.TypeFor[map[string]any]():
		// A free-form object: additionalProperties true or {}.
		free := false
		switch a := c.AdditionalProperties.(type) {
		case bool:
			free = a
		case *huma.Schema:
			free = a != nil && a.Ref == "" && onlyNotes(*a)
		}
		c.Type, c.AdditionalProperties = "", nil
		if free && onlyNotes(c) {
			return memberObject
		}
	}
	return memberUnchecked
}

// onlyNotes reports whether s says nothing a validator checks: no more
// than a title, a description and examples.
func onlyNotes(s huma.Schema) bool {
	s.Title, s.Description, s.Examples = "", "", nil
	b, err := stdjson.Marshal(&s)
	return err == nil && string(b) == "{}"
}

// decode reads d's body into v, a struct of the shape's type, and reports
// whether the body is certainly one huma accepts: strict JSON (valid UTF-8,
// no duplicate names, one value), an object whose every member is a
// checked one, written as the schema names it, and within its limits, and
// which has every required member.
func (s *bodyShape) decode(d *bodyDecoder, v reflect.Value) bool {
	dec := &d.dec
	dec.Reset(&d.buf)
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	var seen uint64
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return false
		}
		m, ok := s.members[string(name)]
		if !ok || m.kind == memberUnchecked {
			return false
		}
		val, err := dec.ReadValue()
		if err != nil || !m.set(v.FieldByIndex(m.field), val) {
			return false
		}
		seen |= m.bit
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return false
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return false
	}
	return seen&s.required == s.required
}

// set decodes val into f if it is within m's limits.
func (m member) set(f reflect.Value, val jsontext.Value) bool {
	switch m.kind {
	case memberString:
		if val.Kind() != '"' {
			return false
		}
		raw := val[1 : len(val)-1]
		var str string
		switch {
		case bytes.IndexByte(raw, '\\') >= 0:
			b, err := jsontext.AppendUnquote(nil, val)
			if err != nil {
				return false
			}
			str = string(b)
		case m.enum != nil:
			i := slices.IndexFunc(m.enum, func(e string) bool { return e == string(raw) })
			if i < 0 {
				return false
			}
			str = m.enum[i] // no copy of a value the schema lists
		default:
			str = string(raw)
		}
		if n := utf8.RuneCountInString(str); (m.min >= 0 && n < m.min) || (m.max >= 0 && n > m.max) {
			return false
		}
		if m.enum != nil && !slices.Contains(m.enum, str) {
			return false
		}
		f.SetString(str)
		return true
	case memberObject:
		return val.Kind() == '{' && json.Unmarshal(val, f.Addr().Interface()) == nil
	}
	return false
}
