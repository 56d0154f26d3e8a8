package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/names/namestest"
	"github.com/faultline-dev/faultline/internal/wire"
	"github.com/faultline-dev/faultline/internal/wire/wiretest"
)

func TestDecodeBreaker(t *testing.T) {
	since := wire.NewTime(time.Date(2026, 1, 27, 9, 0, 0, 0, time.UTC))
	tests := []struct {
		name, body string
		want       wire.Breaker
	}{
		{"state only", `{"state":"open"}`,
			wire.Breaker{V: 1, Name: "db", State: wire.StateOpen, Source: "push"}},
		{"every field", `{"v":1,"name":"db","state":"half_open","failure_rate":62.5,"slow_call_rate":null,
			"calls":{"succeeded":30,"failed":50,"rejected":12,"timed_out":3},"rate_per_sec":8,
			"latency":{"p50_ms":4,"p90_ms":12,"p99_ms":48},"since":"2026-01-27T09:00:00Z","source":"gobreaker",
			"thresholds":{"failure_rate":50,"minimum_calls":20,"open_ms":30000},"stale":true,"last_seen":null}`,
			wire.Breaker{V: 1, Name: "db", State: wire.StateHalfOpen, FailureRate: wire.Ptr(62.5),
				Calls: wire.Calls{Succeeded: 30, Failed: 50, Rejected: 12, TimedOut: 3}, RatePerSec: wire.Ptr(8.0),
				Latency: &wire.Latency{P50Ms: 4, P90Ms: 12, P99Ms: 48}, Since: since, Source: "gobreaker",
				Thresholds: &wire.Thresholds{FailureRate: wire.Ptr(50.0), MinimumCalls: wire.Ptr[uint64](20), OpenMs: wire.Ptr(30000.0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBreaker([]byte(tt.body), "db")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestMarshalledBreakerIsAReport keeps the report format in step with wire.Breaker: a
// client may send a wire.Breaker as it marshals, every field set (wiretest fills each
// field of the type, one added later included), and each comes back unchanged but for
// what the agent sets itself.
func TestMarshalledBreakerIsAReport(t *testing.T) {
	b := wiretest.Filled[wire.Breaker](1)
	body, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBreaker(body, b.Name)
	if err != nil {
		t.Fatalf("a marshalled wire.Breaker was rejected: %v", err)
	}
	b.Stale, b.LastSeen = false, wire.Time{} // the agent's to set
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Names reach the registry byte for byte, from the path of PUT (escaped there, unescaped
// by the router before DecodeBreaker sees them) and from the body of a batch.
func TestNamesAsReported(t *testing.T) {
	for _, name := range namestest.Hostile() {
		b, err := DecodeBreaker([]byte(`{"state":"open"}`), name)
		if err != nil || b.Name != name {
			t.Errorf("DecodeBreaker(%q) = %q, %v", name, b.Name, err)
		}
		body, _ := json.Marshal([]map[string]string{{"name": name, "state": "closed"}})
		bs, err := DecodeBreakers(body)
		if err != nil || len(bs) != 1 || bs[0].Name != name {
			t.Errorf("DecodeBreakers(%s) = %+v, %v", body, bs, err)
		}
	}
}

func TestDecodeBreakerRejects(t *testing.T) {
	tests := []struct{ body, path, want string }{
		{``, "db", "body: empty"},
		{`{"state":"open"`, "db", "body: truncated JSON"},
		{`{"state":open}`, "db", "body: malformed JSON at byte"},
		{`{"state":"open"} {}`, "db", "body: unexpected data after the JSON value"},
		{`[]`, "db", "body: got array, want an object"},
		{`{"state":"sideways"}`, "db", `state: "sideways" is not one of`},
		{`{}`, "db", `state: "" is not one of`},
		{`{"stat":"open"}`, "db", "stat: unknown field"},
		{`{"state":"open","calls":{"succeeded":-1}}`, "db", "calls.succeeded: got number -1, want a non-negative integer"},
		{`{"state":"open","calls":{"failed":1.5}}`, "db", "calls.failed: got number 1.5, want a non-negative integer"},
		{`{"state":"open","calls":{"rejected":"3"}}`, "db", "calls.rejected: got string, want a non-negative integer"},
		{`{"state":"open","calls":{"timedout":3}}`, "db", "timedout: unknown field"},
		{`{"state":"open","failure_rate":101}`, "db", "failure_rate: 101 is not a percentage"},
		{`{"state":"open","slow_call_rate":-1}`, "db", "slow_call_rate: -1 is not a percentage"},
		{`{"state":"open","rate_per_sec":-2}`, "db", "rate_per_sec: -2"},
		{`{"state":"open","latency":{"p50_ms":-1}}`, "db", "latency.p50_ms: -1 is negative"},
		{`{"state":"open","latency":{"p50_ms":9,"p90_ms":2,"p99_ms":3}}`, "db", "latency: percentiles must not decrease"},
		{`{"state":"open","thresholds":{"failure_rate":200}}`, "db", "thresholds.failure_rate: 200 is not a percentage"},
		{`{"state":"open","thresholds":{"minimum_calls":-5}}`, "db", "thresholds.minimum_calls: got number -5"},
		{`{"state":"open","since":"yesterday"}`, "db", `since: "yesterday" is not an RFC 3339 time`},
		{`{"state":"open","since":"2999-01-01T00:00:00Z"}`, "db", "since: \"2999-01-01T00:00:00Z\" is in the future"},
		{`{"state":"open","source":"my source"}`, "db", `source: "my source" may hold only`},
		{`{"state":"open","v":2}`, "db", "v: wire version 2 is not supported"},
		{`{"state":"open","name":"other"}`, "db", `name: the body names "other" but the path names "db"`},
		{`{"state":"open"}`, "", "name: must be 1 to 200 bytes"},
		{`{"state":"open"}`, strings.Repeat("x", 201), "name: must be 1 to 200 bytes (got 201)"},
		{`{"state":"open"}`, "..", `name: ".." cannot be a breaker name`},
		{`{"state":"open"}`, "tab\there", "holds the control character U+0009"},
		{`{"state":"open","state":"closed"}`, "db", `body: "state": named twice in one object`},
		{`{"state":"open","calls":{"failed":1,"Failed":2}}`, "db", `body: "Failed": named twice in one object`},
		{`{"state":"open","rate_per_sec":1.7e308}`, "db", "rate_per_sec: 1.7e+308 is above the limit of 1e+09"},
		{`{"state":"open","calls":{"failed":1000000000000000}}`, "db", "calls.failed: 1e+15 is not a count up to 2^48"},
	}
	for _, tt := range tests {
		_, err := DecodeBreaker([]byte(tt.body), tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeBreaker(%s, %q) = %v, want an error containing %q", tt.body, tt.path, err, tt.want)
		}
	}
}

func TestDecodeBreakers(t *testing.T) {
	got, err := DecodeBreakers([]byte(`[{"name":"a","state":"closed"},{"name":"b","state":"open","source":"client"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Breaker{
		{V: 1, Name: "a", State: wire.StateClosed, Source: "push"},
		{V: 1, Name: "b", State: wire.StateOpen, Source: "client"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got, err := DecodeBreakers([]byte(`[]`)); err != nil || len(got) != 0 {
		t.Errorf("empty batch: %v, %v", got, err)
	}
	for body, want := range map[string]string{
		`{"name":"a","state":"closed"}`:                               "body: got object, want an array",
		`[{"name":"a","state":"closed"},{"state":"open"}]`:            "[1].name: required in a batch",
		`[{"name":"a","state":"closed"},{"name":"b","state":"shut"}]`: `[1].state: "shut" is not one of`,
		`[{"name":"a","state":"closed"},{"name":"a","state":"open"}]`: `[1].name: "a" is already reported at [0]`,
		`[{"name":"a","state":"closed","calls":{"failed":-1}}]`:       "[0].calls.failed: got number -1",
		`[{"name":"a","state":"closed","bogus":1}]`:                   "[0].bogus: unknown field",
		`[{"name":"a","state":"closed"}, 7]`:                          "[1]: got number, want an object",
		`[{"name":"a","state":"closed"}`:                              "body: truncated JSON",
	} {
		if _, err := DecodeBreakers([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeBreakers(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}

func TestDecodeThroughput(t *testing.T) {
	got, err := DecodeThroughput([]byte(`{"requests":1200,"errors":30,"latency":{"p50_ms":4,"p90_ms":12,"p99_ms":48}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Throughput{Requests: wire.Ptr[uint64](1200), Errors: wire.Ptr[uint64](30), Latency: &wire.Latency{P50Ms: 4, P90Ms: 12, P99Ms: 48}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err = DecodeThroughput([]byte(`{"requests":5}`))
	if err != nil || *got.Errors != 0 {
		t.Errorf("errors default: %+v, %v; want 0", got, err)
	}
	for body, want := range map[string]string{
		`{}`:                                     "requests: required",
		`{"requests":-1}`:                        "requests: got number -1, want a non-negative integer",
		`{"requests":1,"errors":-1}`:             "errors: got number -1",
		`{"requests":1,"errors":2}`:              "errors: 2 is more than requests (1)",
		`{"requests":1,"latency":{"p99_ms":-3}}`: "latency.p99_ms: -3 is negative",
		`{"requests":1,"rps":3}`:                 "rps: unknown field",
		`{"requests":1,"v":7}`:                   "v: wire version 7",
		`"lots"`:                                 "body: got string, want an object",
	} {
		if _, err := DecodeThroughput([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeThroughput(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}

func TestDecodeEvents(t *testing.T) {
	got, err := DecodeEvents([]byte(`{"v":1,"breakers":[{"name":"a","state":"open"}],"throughput":{"requests":10,"errors":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Events{
		Breakers:   []wire.Breaker{{V: 1, Name: "a", State: wire.StateOpen, Source: "push"}},
		Throughput: &Throughput{Requests: wire.Ptr[uint64](10), Errors: wire.Ptr[uint64](1)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for body, want := range map[string]string{
		`{}`: "body: neither breakers nor throughput",
		`{"breakers":[{"name":"a","state":"open"},{"name":"b","state":"x"}]}`: `breakers[1].state: "x" is not one of`,
		`{"breakers":[],"throughput":{"requests":1,"errors":5}}`:              "throughput.errors: 5 is more than requests",
		`{"breakers":[],"throughput":{"requests":1,"typo":5}}`:                "throughput.typo: unknown field",
		`{"breakers":[],"alerts":[]}`:                                         "alerts: unknown field",
		`{"breakers":[],"throughput":[]}`:                                     "throughput: got array, want an object",
	} {
		if _, err := DecodeEvents([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeEvents(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}
