// Package ingest decodes what an application pushes to its agent: breaker reports and
// throughput counters. Decoding is strict, so that a typo fails loudly instead of being
// ignored: unknown fields, malformed JSON, an unknown state, a negative counter or a bad
// name are errors that name the field, and a batch is accepted whole or not at all.
//
// A breaker report is a wire.Breaker in JSON (a marshalled wire.Breaker is a valid
// report); the agent sets v, stale and last_seen itself.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// SourcePush is the source of breakers whose report does not name one.
const SourcePush = "push"

// report is a wire.Breaker as an application sends it: every field of a marshalled
// wire.Breaker is accepted (a field added to wire.Breaker is accepted with it), v may be
// left out, and times are parsed with their field named. The agent sets v, stale and
// last_seen itself.
type report struct {
	wire.Breaker
	V        *int            `json:"v"`
	Since    json.RawMessage `json:"since"`
	LastSeen json.RawMessage `json:"last_seen"`
}

// DecodeBreaker decodes the body of PUT /v1/breakers/{name}. The name comes from the
// path; a name in the body must match it.
func DecodeBreaker(body []byte, name string) (wire.Breaker, error) {
	var r report
	if err := strict(body, &r); err != nil {
		return wire.Breaker{}, err
	}
	if r.Name != "" && r.Name != name {
		return wire.Breaker{}, fmt.Errorf("name: the body names %q but the path names %q", r.Name, name)
	}
	r.Name = name
	return r.breaker()
}

// DecodeBreakers decodes the body of POST /v1/breakers: a JSON array of reports, each
// with its name. Errors name the report by index: "[2].state: ...".
func DecodeBreakers(body []byte) ([]wire.Breaker, error) {
	var reports []report
	if err := strict(body, &reports); err == nil {
		return fromReports(reports, "")
	}
	var raw []json.RawMessage // decode again, item by item, to say which one is wrong
	if err := strict(body, &raw); err != nil {
		return nil, err
	}
	return decodeList(raw, "")
}

// decodeList decodes reports one at a time, so that an error names its index.
func decodeList(raw []json.RawMessage, prefix string) ([]wire.Breaker, error) {
	reports := make([]report, len(raw))
	for i, item := range raw {
		if err := strict(item, &reports[i]); err != nil {
			return nil, prefixed(fmt.Sprintf("%s[%d].", prefix, i), err)
		}
	}
	return fromReports(reports, prefix)
}

// fromReports validates decoded reports: each must be valid and name a breaker once.
func fromReports(reports []report, prefix string) ([]wire.Breaker, error) {
	out := make([]wire.Breaker, 0, len(reports))
	seen := make(map[string]int, len(reports))
	for i, r := range reports {
		at := fmt.Sprintf("%s[%d].", prefix, i)
		if r.Name == "" {
			return nil, fmt.Errorf("%sname: required in a batch", at)
		}
		if j, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%sname: %q is already reported at %s[%d]", at, r.Name, prefix, j)
		}
		seen[r.Name] = i
		b, err := r.breaker()
		if err != nil {
			return nil, prefixed(at, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Throughput is what the application reports of its own traffic. Requests and errors
// are totals since the application started (counters); the agent turns them into rates.
type Throughput struct {
	V        *int          `json:"v,omitempty"`
	Requests *uint64       `json:"requests"`
	Errors   *uint64       `json:"errors,omitempty"`
	Latency  *wire.Latency `json:"latency,omitempty"`
}

// DecodeThroughput decodes the body of POST /v1/throughput.
func DecodeThroughput(body []byte) (Throughput, error) {
	var t Throughput
	if err := strict(body, &t); err != nil {
		return t, err
	}
	return t, t.check()
}

func (t *Throughput) check() error {
	if err := checkVersion(t.V); err != nil {
		return err
	}
	if t.Requests == nil {
		return errors.New("requests: required (total requests served so far)")
	}
	if t.Errors == nil {
		t.Errors = new(uint64)
	}
	if *t.Errors > *t.Requests {
		return fmt.Errorf("errors: %d is more than requests (%d)", *t.Errors, *t.Requests)
	}
	return checkLatency("latency", t.Latency)
}

// Events is the body of POST /v1/events: breaker reports and throughput in one request.
type Events struct {
	Breakers   []wire.Breaker
	Throughput *Throughput
}

// DecodeEvents decodes the body of POST /v1/events.
func DecodeEvents(body []byte) (Events, error) {
	var fast struct {
		V          *int        `json:"v"`
		Breakers   []report    `json:"breakers"`
		Throughput *Throughput `json:"throughput"`
	}
	if err := strict(body, &fast); err == nil {
		return events(fast.V, fast.Breakers, fast.Throughput)
	}
	var raw struct { // decode again, part by part, to say which one is wrong
		V          *int              `json:"v"`
		Breakers   []json.RawMessage `json:"breakers"`
		Throughput *json.RawMessage  `json:"throughput"`
	}
	if err := strict(body, &raw); err != nil {
		return Events{}, err
	}
	reports := make([]report, len(raw.Breakers))
	for i, item := range raw.Breakers {
		if err := strict(item, &reports[i]); err != nil {
			return Events{}, prefixed(fmt.Sprintf("breakers[%d].", i), err)
		}
	}
	if raw.Breakers == nil {
		reports = nil
	}
	var tp *Throughput
	if raw.Throughput != nil {
		tp = new(Throughput)
		if err := strict(*raw.Throughput, tp); err != nil {
			return Events{}, prefixed("throughput.", err)
		}
	}
	return events(raw.V, reports, tp)
}

func events(v *int, reports []report, tp *Throughput) (Events, error) {
	if err := checkVersion(v); err != nil {
		return Events{}, err
	}
	if reports == nil && tp == nil {
		return Events{}, errors.New("body: neither breakers nor throughput")
	}
	var ev Events
	var err error
	if ev.Breakers, err = fromReports(reports, "breakers"); err != nil {
		return Events{}, err
	}
	if tp != nil {
		if err := tp.check(); err != nil {
			return Events{}, prefixed("throughput.", err)
		}
		ev.Throughput = tp
	}
	return ev, nil
}

// breaker validates a report and turns it into the registry's model.
func (r report) breaker() (wire.Breaker, error) {
	if err := checkVersion(r.V); err != nil {
		return wire.Breaker{}, err
	}
	since, err := parseTime("since", r.Since)
	if err != nil {
		return wire.Breaker{}, err
	}
	if _, err := parseTime("last_seen", r.LastSeen); err != nil {
		return wire.Breaker{}, err
	}
	if r.Source == "" {
		r.Source = SourcePush
	}
	b := r.Breaker
	b.V, b.Since, b.Stale, b.LastSeen = wire.Version, since, false, wire.Time{}
	if err := wire.CheckBreaker(&b); err != nil {
		return wire.Breaker{}, err
	}
	return b, checkLatency("latency", b.Latency)
}

func checkVersion(v *int) error {
	if v != nil && *v != wire.Version {
		return fmt.Errorf("v: wire version %d is not supported (want %d)", *v, wire.Version)
	}
	return nil
}

func parseTime(field string, raw json.RawMessage) (wire.Time, error) {
	var t wire.Time
	if len(raw) == 0 {
		return t, nil
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, fmt.Errorf("%s: %s is not an RFC 3339 time or null", field, raw)
	}
	if !t.IsZero() && t.After(time.Now().Add(time.Hour)) {
		return t, fmt.Errorf("%s: %s is in the future", field, raw)
	}
	return t, nil
}

// checkLatency checks the percentiles' bounds, and that they do not decrease.
func checkLatency(field string, l *wire.Latency) error {
	if l == nil {
		return nil
	}
	if err := wire.CheckLatency(l); err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	if l.P50Ms > l.P90Ms || l.P90Ms > l.P99Ms {
		return fmt.Errorf("%s: percentiles must not decrease (p50 %v, p90 %v, p99 %v)", field, l.P50Ms, l.P90Ms, l.P99Ms)
	}
	return nil
}

// strict decodes one JSON value into v, rejecting unknown fields, a name given twice in
// one object and trailing data, and rewrites decoding errors to name the field at fault.
func strict(body []byte, v any) error {
	if err := wire.CheckNames(body); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: unexpected data after the JSON value")
	}
	return nil
}

func describe(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("body: empty; want JSON")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body: truncated JSON")
	case errors.As(err, &syntax):
		return fmt.Errorf("body: malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := strings.TrimPrefix(typ.Field, "Breaker.") // report embeds wire.Breaker
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%s: got %s, want %s", field, typ.Value, kindWord(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s: unknown field", strings.Trim(name, `"`))
	}
	return fmt.Errorf("body: %w", err)
}

// kindWord says in words what JSON a Go type takes.
func kindWord(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// prefixed puts a batch position before an error that starts with a field name.
func prefixed(at string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "body: "); ok {
		return errors.New(strings.TrimSuffix(at, ".") + ": " + rest)
	}
	return errors.New(at + msg)
}
