package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// The config file format: TOML, one flat table, decoded strictly over
// [DefaultConfig]. Why TOML and not the JSON the federation and sim files
// use: operators edit this file by hand and need comments (RATIONALE).
//
// Every fact about a key is on its Config field: the key (toml tag), its
// documentation (comment tag, what `signpost node init` writes), whether the
// environment may override it (env tag) and its type. The decoder, the
// writer, the environment overrides and the converter of the old format all
// read those tags, so a new key is one new field.

// MaxConfigBytes bounds a config file.
const MaxConfigBytes = 1 << 20

// Duration is a time.Duration written in a config file as a string: Go's
// duration syntax ("10s", "36h") or a whole number of days ("2190d"). It is
// a struct, not a named int64, so that a bare number in the file ("10",
// which would be ten nanoseconds) is refused instead of decoded.
type Duration struct{ d time.Duration }

// DurationOf returns d as a config Duration.
func DurationOf(d time.Duration) Duration { return Duration{d} }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return d.d }

// MarshalText writes whole days as "Nd", anything else in Go's syntax.
func (d Duration) MarshalText() ([]byte, error) {
	const day = 24 * time.Hour
	if d.d != 0 && d.d%day == 0 {
		return []byte(strconv.FormatInt(int64(d.d/day), 10) + "d"), nil
	}
	return []byte(d.d.String()), nil
}

// UnmarshalText reads Go's duration syntax or "Nd" (N whole days).
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil || days > 100*366 {
			return fmt.Errorf("want a duration such as \"10s\", \"36h\" or \"2190d\", got %q", s)
		}
		d.d = time.Duration(days) * 24 * time.Hour
		return nil
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"10s\", \"36h\" or \"2190d\", got %q", s)
	}
	d.d = t
	return nil
}

// ParseConfig decodes a TOML config over [DefaultConfig]. name is the file's
// name, used only in messages. Unknown keys, keys given twice, values of the
// wrong type and syntax errors are all errors (a typo must not silently fall
// back to a default), each reported as name:line:column: key: problem, all at
// once, wrapped in [ErrConfig].
//
// A file in the old flat `key = value` format (before TOML) is still read,
// for one release: legacy is then true, and the caller should tell the
// operator to convert it with `signpost node config-convert`
// ([ConvertLegacyConfig]).
func ParseConfig(name string, r io.Reader) (c Config, legacy bool, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return Config{}, false, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
	}
	if len(data) > MaxConfigBytes {
		return Config{}, false, fmt.Errorf("%w: %s: larger than %d bytes", ErrConfig, name, MaxConfigBytes)
	}
	c, err = decodeConfig(name, data)
	if err == nil || !isSyntaxError(err) || looksTOML(data) {
		return c, false, err
	}
	// Not TOML: perhaps the old format. If it converts and decodes, it is;
	// otherwise the TOML error is the one to show.
	conv, cerr := ConvertLegacyConfig(bytes.NewReader(data))
	if cerr != nil {
		return Config{}, false, err
	}
	lc, lerr := decodeConfig(name, conv)
	if lerr != nil {
		return Config{}, false, err
	}
	return lc, true, nil
}

// looksTOML reports whether data uses what only TOML has: a quoted or
// bracketed value or a [table] header. Such a file with a syntax error is a
// broken TOML file, not the old format (whose values were bare), and must not
// be read as the old format with its quotes taken literally.
func looksTOML(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "[") {
			return true
		}
		if _, v, ok := strings.Cut(s, "="); ok && !strings.HasPrefix(s, "#") {
			if v = strings.TrimSpace(v); v != "" && strings.ContainsRune("'\"[{", rune(v[0])) {
				return true
			}
		}
	}
	return false
}

// syntaxError marks a TOML error that is not about one key: the file is not
// TOML at all (perhaps the old format).
type syntaxError struct{ error }

func (e syntaxError) Unwrap() error { return e.error }

func isSyntaxError(err error) bool {
	var s syntaxError
	return errors.As(err, &s)
}

func decodeConfig(name string, data []byte) (Config, error) {
	c := DefaultConfig()
	if err := decodeOnto(&c, name, data); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decodeOnto decodes TOML data onto c strictly; fields the data does not name
// keep their values.
func decodeOnto(c *Config, name string, data []byte) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for i := range strict.Errors {
			errs = append(errs, keyError(name, &strict.Errors[i], "unknown key"+suggest(strict.Errors[i].Key())))
		}
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		if len(de.Key()) == 0 {
			row, col := de.Position()
			return fmt.Errorf("%w: %w", ErrConfig, syntaxError{fmt.Errorf("%s:%d:%d: %s", name, row, col, strings.TrimPrefix(de.Error(), "toml: "))})
		}
		// go-toml stops at the first value of the wrong type; the unknown
		// keys it would have reported after it are found here, so that one
		// run of the node shows every problem.
		errs := append([]error{keyError(name, de, problem(de))}, unknownKeys(name, data)...)
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	// An error from a Duration's UnmarshalText, which go-toml returns
	// without its place: find the key whose value it is.
	errs := append([]error{placeDurationError(name, data, err)}, unknownKeys(name, data)...)
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// unknownKeys lists, with their lines, the top-level keys and tables of a
// document that parses as TOML but that Config does not have.
func unknownKeys(name string, data []byte) []error {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return nil
	}
	var errs []error
	for key := range doc {
		if _, known := configField(key); known {
			continue
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s: unknown key%s", name, keyLine(data, key), key, suggest([]string{key})))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// keyLine is the line of data where key is set or opens a table (0 if it
// cannot be found, e.g. a dotted or quoted key).
func keyLine(data []byte, key string) int {
	for i, line := range strings.Split(string(data), "\n") {
		l := strings.TrimSpace(line)
		if k, _, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == key {
			return i + 1
		}
		if strings.TrimSpace(strings.Trim(l, "[]")) == key && strings.HasPrefix(l, "[") {
			return i + 1
		}
	}
	return 0
}

// placeDurationError finds which duration key of data holds a value that
// is not a duration, and says so at its line, as go-toml does for the rest.
func placeDurationError(name string, data []byte, err error) error {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) == nil {
		for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
			key := tomlKey(f)
			v, ok := doc[key]
			if f.Type != reflect.TypeFor[Duration]() || !ok {
				continue
			}
			var d Duration
			if s, isString := v.(string); isString && d.UnmarshalText([]byte(s)) == nil {
				continue
			}
			if line := keyLine(data, key); line > 0 {
				return fmt.Errorf("%s:%d: %s: want %s", name, line, key, describe(f.Type))
			}
		}
	}
	return fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "toml: "))
}

func keyError(name string, de *toml.DecodeError, msg string) error {
	row, col := de.Position()
	return fmt.Errorf("%s:%d:%d: %s: %s", name, row, col, strings.Join(de.Key(), "."), msg)
}

// problem says in the operator's words what is wrong with a key's value:
// what type the key wants (go-toml's own message names Go types), or the
// field's own parse error.
func problem(de *toml.DecodeError) string {
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if strings.Contains(msg, "key ") && strings.Contains(msg, "already defined") {
		return "given twice"
	}
	f, ok := configField(strings.Join(de.Key(), "."))
	switch {
	case !ok:
		return msg
	case strings.HasPrefix(msg, "cannot decode"):
		return "want " + describe(f.Type)
	case strings.Contains(msg, "cannot be stored"):
		return fmt.Sprintf("want %s from 0 to %d", describe(f.Type), uint64(1)<<f.Type.Bits()-1)
	}
	return msg
}

func describe(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration in quotes such as "10s", "36h" or "2190d"`
	case t.Kind() == reflect.String:
		return "a string in quotes"
	case t.Kind() == reflect.Slice:
		return `a list of strings, such as ["a", "b"]`
	case t.Kind() == reflect.Float64:
		return "a number"
	default:
		return "a whole number"
	}
}

// suggest offers the known key closest to an unknown one ("did you mean").
func suggest(key []string) string {
	k := strings.ToLower(strings.Join(key, "."))
	if why, ok := removedKeys[k]; ok {
		return " (" + why + ")"
	}
	best, bestD := "", 3
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		name := tomlKey(f)
		if d := editDistance(k, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// removedKeys are keys of earlier releases that no longer exist, with what
// replaced them: a file that still sets one is refused with this reason.
var removedKeys = map[string]string{
	"issuer":            singleKeyRemoved,
	"issuer_key_file":   singleKeyRemoved,
	"issuer_public_key": singleKeyRemoved,
	"epoch":             "removed: each token key's epoch is in its key record (key_records_file)",
}

const singleKeyRemoved = "removed: no node holds a whole token key any more; tokens come from t-of-n issuers " +
	"whose keys are made by a DKG and described by signed key records (key_records_file, shares_dir; docs/DESIGN.md, \"Threshold issuer\")"

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func tomlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return k
}

func configField(key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if tomlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// ApplyEnv overrides the keys tagged env (the addresses and the secret-file
// paths) from the environment: lookup is os.LookupEnv in production. A value
// is read as the old format read it: lists comma-separated, everything else
// as written. Every problem is reported at once, naming the variable, never
// its value (it may be a path an operator would rather not log).
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		env := f.Tag.Get("env")
		if env == "" {
			continue
		}
		v, ok := lookup(env)
		if !ok {
			continue
		}
		lit, err := literal(f.Type, v)
		if err == nil {
			err = decodeOnto(c, env, []byte(tomlKey(f)+" = "+lit+"\n"))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want %s", env, describe(f.Type)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// EnvOverrides lists the environment variables [Config.ApplyEnv] reads.
func EnvOverrides() []string {
	var out []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if env := f.Tag.Get("env"); env != "" {
			out = append(out, env)
		}
	}
	return out
}

// literal turns a value as the old format wrote it into a TOML literal for a
// field of type t: lists split on commas, strings and durations quoted,
// numbers as written (the decoder then checks them).
func literal(t reflect.Type, v string) (string, error) {
	switch {
	case t.Kind() == reflect.Slice:
		var items []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, strconv.Quote(p))
			}
		}
		return "[" + strings.Join(items, ", ") + "]", nil
	case t.Kind() == reflect.String || t == reflect.TypeFor[Duration]():
		if strings.ContainsAny(v, "\x00\r\n") {
			return "", errors.New("control character")
		}
		return strconv.Quote(v), nil
	default:
		if v == "" || strings.ContainsAny(v, " \t\"'[]{}=#\r\n") {
			return "", errors.New("malformed value")
		}
		return v, nil
	}
}

// ConvertLegacyConfig turns a config in the old flat `key = value` format
// into the TOML of today, keeping its comments and order. Unknown keys and
// malformed lines are errors with their line. `signpost node config-convert`
// prints its result.
func ConvertLegacyConfig(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("# Signpost agency node configuration (TOML), converted from the old key = value format.\n")
	sc := bufio.NewScanner(io.LimitReader(r, MaxConfigBytes))
	sc.Buffer(make([]byte, 4096), 64<<10)
	var errs []error
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			out.WriteString(s + "\n")
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: expected key = value", line))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		f, known := configField(k)
		if !known {
			errs = append(errs, fmt.Errorf("line %d: %s: unknown key", line, k))
			continue
		}
		lit, err := literal(f.Type, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", line, k, err))
			continue
		}
		fmt.Fprintf(&out, "%s = %s\n", k, lit)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return out.Bytes(), nil
}

// WriteDefaultConfig writes a commented TOML config with safe defaults for
// the given node id (what `signpost node init` prints), from [DefaultConfig]
// and the fields' comment tags. The example values it fills in (agency,
// category, contact, the enrolment files) are placeholders to edit.
func WriteDefaultConfig(w io.Writer, nodeID string) error {
	c := DefaultConfig()
	c.NodeID = nodeID
	c.Agency = "Example Agency"
	c.Category = "children-social-care"
	c.Contact = "Duty desk, 01632 960000 (synthetic)"
	c.AuthorityKeyFile = "authority.pub"
	c.CredentialsFile = "node.pem"
	c.GossipKeyFile = "gossip.key"
	body, err := toml.Marshal(c)
	if err != nil {
		return fmt.Errorf("node: write default config: %w", err)
	}
	if _, err := io.WriteString(w, "# Signpost agency node configuration (TOML). Unknown keys are errors.\n"+
		"# Environment variables override: "+strings.Join(EnvOverrides(), ", ")+".\n\n"); err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}
