package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// decodeStrict decodes the JSON document b over *v (fields left out keep
// their values, as with encoding/json), level by level, so that every
// problem names its field path: "partitions[1].bogus: unknown field",
// "duration: must be a string such as \"250ms\" (got 60)". It differs from
// encoding/json with DisallowUnknownFields in three ways, all stricter:
// field names match exactly (not case-insensitively), a key given twice
// is an error, and it reports every problem rather than the first.
//
// b must be one syntactically valid JSON value; v a pointer to a struct
// built only of the kinds the Scenario uses (structs, slices, string-keyed
// maps, pointers, json.Unmarshalers and scalars).
func decodeStrict(b []byte, v any) []error {
	var d decoder
	d.value("", b, reflect.ValueOf(v).Elem())
	return d.errs
}

type decoder struct{ errs []error }

func (d *decoder) fail(path, format string, args ...any) {
	if path == "" {
		path = "scenario"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (d *decoder) value(path string, raw json.RawMessage, v reflect.Value) {
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			d.fail(path, "%v", err)
		}
		return
	}
	if string(raw) == "null" {
		// As encoding/json: null clears a pointer, slice or map and
		// leaves anything else as it was.
		switch v.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			v.SetZero()
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(path, raw, v.Elem())
	case reflect.Struct:
		d.object(path, raw, v.Type(), func(key string, val json.RawMessage) {
			f, ok := fieldByTag(v.Type(), key)
			if !ok {
				if g, ok := fieldByTagFold(v.Type(), key); ok {
					d.fail(join(path, key), "unknown field (did you mean %q?)", g)
				} else {
					d.fail(join(path, key), "unknown field")
				}
				return
			}
			d.value(join(path, key), val, v.FieldByIndex(f.Index))
		})
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		d.object(path, raw, v.Type(), func(key string, val json.RawMessage) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(join(path, key), val, e)
			m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
		v.Set(m)
	case reflect.Slice:
		var items []json.RawMessage
		if jsonKind(raw) != "an array" || json.Unmarshal(raw, &items) != nil {
			d.fail(path, "want %s, got %s", typeName(v.Type()), describe(raw))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			d.value(fmt.Sprintf("%s[%d]", path, i), it, s.Index(i))
		}
		v.Set(s)
	default:
		// A scalar: encoding/json's own checks (kind, range, integer).
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			d.fail(path, "want %s, got %s", typeName(v.Type()), describe(raw))
		}
	}
}

// object calls fn for each member of the JSON object raw, in order,
// reporting a value that is not an object and keys given twice.
func (d *decoder) object(path string, raw json.RawMessage, t reflect.Type, fn func(key string, val json.RawMessage)) {
	if jsonKind(raw) != "an object" {
		d.fail(path, "want %s, got %s", typeName(t), describe(raw))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	_, _ = dec.Token() // {
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			d.fail(path, "%v", err) // unreachable: raw is valid JSON
			return
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			d.fail(join(path, key), "%v", err)
			return
		}
		if seen[key] {
			d.fail(join(path, key), "given twice")
			continue
		}
		seen[key] = true
		fn(key, val)
	}
}

// join appends key to path, quoting a key that is not a plain name.
func join(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
		}
	}
	if !plain {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByTag returns t's field whose JSON name is exactly name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if f.IsExported() && tagName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldByTagFold returns the JSON name of t's field that matches name but
// for case, for a hint.
func fieldByTagFold(t reflect.Type, name string) (string, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if n := tagName(f); f.IsExported() && strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

func tagName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if n == "" {
		return f.Name
	}
	return n
}

// jsonKind names the kind of the JSON value raw, with its article.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// describe shows a JSON value in a message: itself if short, else its kind.
func describe(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) <= 40 && !bytes.ContainsAny(raw, "\n\r") {
		return string(raw)
	}
	return jsonKind(raw)
}

// typeName says what a Go type expects, in JSON terms.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a " + strconv.Itoa(t.Bits()) + "-bit integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an unsigned " + strconv.Itoa(t.Bits()) + "-bit integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// readScenarioJSON reads one JSON value of at most 1 MiB from r and
// checks its syntax, naming the line and column of a syntax error.
func readScenarioJSON(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("sim: read scenario: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("sim: scenario file larger than 1 MiB: %w", ErrBadScenario)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(b, se.Offset)
			return nil, fmt.Errorf("sim: parse scenario: line %d, column %d: %w: %w", line, col, err, ErrBadScenario)
		}
		return nil, fmt.Errorf("sim: parse scenario: %w: %w", err, ErrBadScenario)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("sim: parse scenario: trailing data after the JSON object: %w", ErrBadScenario)
	}
	return raw, nil
}

// lineCol turns a byte offset into 1-based line and column.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}
