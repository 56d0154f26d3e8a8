package source

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

const (
	ctText        = "text/plain; version=0.0.4; charset=utf-8"
	ctOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

var paymentsMapping = config.BreakerMapping{
	Metric:    "payments_circuit_state",
	NameLabel: "target",
	States:    map[string]string{"0": "closed", "1.0": "half_open", "2": "open"},
}

func pct(v float64) *float64 { return &v }

func br(name string, state wire.BreakerState, calls wire.Calls, fail, slow *float64) wire.Breaker {
	return wire.Breaker{V: wire.Version, Name: name, State: state, Calls: calls, FailureRate: fail, SlowCallRate: slow}
}

// mapFixture parses testdata/name and maps it.
func mapFixture(t *testing.T, name, contentType string, mappings ...config.BreakerMapping) Mapped {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fams, err := ParseExposition(f, contentType)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return MapFamilies(fams, mappings)
}

func TestMapFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture, contentType string
		mappings             []config.BreakerMapping
		want                 Mapped
	}{
		{
			fixture: "resilience4j-micrometer.txt", contentType: ctText,
			want: Mapped{Formats: []string{FormatResilience4j}, Breakers: []wire.Breaker{
				// failure_rate -1 ("not enough calls yet") is unknown, not -1 %.
				br("inventory", wire.StateClosed, wire.Calls{Succeeded: 1204, Failed: 3}, nil, nil),
				br("payments", wire.StateOpen, wire.Calls{Succeeded: 930, Failed: 212, Rejected: 1517}, pct(62.5), pct(12.5)),
				br("shipping", wire.StateHalfOpen, wire.Calls{Succeeded: 88, Failed: 14, Rejected: 9}, nil, nil),
			}},
		},
		{
			fixture: "resilience4j-micrometer.om.txt", contentType: ctOpenMetrics,
			want: Mapped{Formats: []string{FormatResilience4j}, Breakers: []wire.Breaker{
				br("payments", wire.StateOpen, wire.Calls{Succeeded: 930, Failed: 212, Rejected: 1517}, pct(62.5), nil),
			}},
		},
		{
			fixture: "resilience4j-prometheus.txt", contentType: ctText,
			want: Mapped{Formats: []string{FormatResilience4j}, Breakers: []wire.Breaker{
				br("ledger", wire.StateForcedOpen, wire.Calls{Succeeded: 7, Failed: 3, Rejected: 41}, pct(30), pct(0)),
			}},
		},
		{
			fixture: "resilience4j-prometheus-legacy.txt", contentType: ctText,
			want: Mapped{Formats: []string{FormatResilience4jLegacy}, Breakers: []wire.Breaker{
				br("audit", wire.StateDisabled, wire.Calls{}, nil, nil), // 5: metrics only
				br("inventory", wire.StateClosed, wire.Calls{Succeeded: 97, Failed: 3}, nil, nil),
				br("ledger", wire.StateForcedOpen, wire.Calls{}, nil, nil),
				br("payments", wire.StateOpen, wire.Calls{Succeeded: 30, Failed: 70, Rejected: 12}, nil, nil),
				br("reporting", wire.StateDisabled, wire.Calls{}, nil, nil),
				br("shipping", wire.StateHalfOpen, wire.Calls{Succeeded: 1, Failed: 1, Rejected: 5}, nil, nil),
			}},
		},
		{
			fixture: "envoy.txt", contentType: ctText,
			want: Mapped{Formats: []string{FormatEnvoy}, Breakers: []wire.Breaker{
				// 5xx minus timeouts (Envoy answers a timeout with a 504).
				br("catalog", wire.StateClosed, wire.Calls{Succeeded: 5151, Failed: 7, TimedOut: 2}, nil, nil),
				br("catalog outlier-detection", wire.StateClosed, wire.Calls{}, nil, nil),
				br("payments", wire.StateOpen, wire.Calls{Succeeded: 800, Failed: 50, Rejected: 37, TimedOut: 11}, nil, nil),
				br("ratings", wire.StateClosed, wire.Calls{Succeeded: 77}, nil, nil),
				br("ratings outlier-detection", wire.StateOpen, wire.Calls{}, nil, nil),
			}},
		},
		{
			fixture: "generic.txt", contentType: ctText, mappings: []config.BreakerMapping{paymentsMapping},
			want: Mapped{
				Formats: []string{FormatMapping},
				Breakers: []wire.Breaker{
					br("acquirer", wire.StateOpen, wire.Calls{}, nil, nil),
					br("fraud-check", wire.StateClosed, wire.Calls{}, nil, nil),
					br("tokenizer", wire.StateHalfOpen, wire.Calls{}, nil, nil),
				},
				Problems: []string{`payments_circuit_state{target="vault"}: value 7 is not in the mapping's states`},
			},
		},
		{
			// Without the mapping the same exposition holds no breaker at all.
			fixture: "generic.txt", contentType: ctText,
			want: Mapped{Breakers: []wire.Breaker{}},
		},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := mapFixture(t, tc.fixture, tc.contentType, tc.mappings...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MapFamilies (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMapBadInput feeds expositions that are well-formed text but wrong as breaker
// data: each must yield exactly the listed breakers and problems, never a bad breaker.
func TestMapBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, text   string
		wantBreakers []string // name=state
		wantProblems []string
	}{
		{
			name: "two states set",
			text: `resilience4j_circuitbreaker_state{name="a",state="closed"} 1
resilience4j_circuitbreaker_state{name="a",state="open"} 1
`,
			wantProblems: []string{`breaker "a" (resilience4j): 2 states are set at once`},
		},
		{
			name:         "no state set",
			text:         `resilience4j_circuitbreaker_state{name="a",state="closed"} 0` + "\n",
			wantProblems: []string{`breaker "a" (resilience4j): no state is set`},
		},
		{
			name: "unknown state label",
			text: `resilience4j_circuitbreaker_state{name="a",state="sideways"} 1` + "\n",
			wantProblems: []string{
				`breaker "a" (resilience4j): no state is set`,
				`resilience4j_circuitbreaker_state{name="a"}: unknown state "sideways"`,
			},
		},
		{
			name: "one-hot value neither 0 nor 1",
			text: `resilience4j_circuitbreaker_state{name="a",state="open"} 0.5
resilience4j_circuitbreaker_state{name="a",state="closed"} 1
`,
			wantBreakers: []string{"a=closed"},
			wantProblems: []string{`resilience4j_circuitbreaker_state{name="a",state="open"}: value 0.5 is neither 0 nor 1`},
		},
		{
			name: "ordinal out of range and fractional",
			text: `resilience4j_circuitbreaker_state{name="a"} 7
resilience4j_circuitbreaker_state{name="b"} 1.5
resilience4j_circuitbreaker_state{name="c"} -1
resilience4j_circuitbreaker_state{name="d"} 2
`,
			wantBreakers: []string{"d=half_open"},
			wantProblems: []string{
				`breaker "a" (resilience4j-legacy): no state is set`,
				`breaker "b" (resilience4j-legacy): no state is set`,
				`breaker "c" (resilience4j-legacy): no state is set`,
				`resilience4j_circuitbreaker_state{name="a"}: unknown state ordinal 7`,
				`resilience4j_circuitbreaker_state{name="b"}: unknown state ordinal 1.5`,
				`resilience4j_circuitbreaker_state{name="c"}: unknown state ordinal -1`,
			},
		},
		{
			name: "NaN and infinite values",
			text: `resilience4j_circuitbreaker_state{name="a",state="open"} NaN
resilience4j_circuitbreaker_state{name="b",state="open"} 1
resilience4j_circuitbreaker_failure_rate{name="b"} +Inf
resilience4j_circuitbreaker_slow_call_rate{name="b"} NaN
resilience4j_circuitbreaker_calls_seconds_count{name="b",kind="failed"} -3
resilience4j_circuitbreaker_calls_seconds_count{name="b",kind="successful"} 1e300
`,
			wantBreakers: []string{"b=open"},
			wantProblems: []string{
				`resilience4j_circuitbreaker_calls_seconds_count{name="b",kind="failed"}: not a call count`,
				`resilience4j_circuitbreaker_calls_seconds_count{name="b",kind="successful"}: not a call count`,
				`resilience4j_circuitbreaker_failure_rate{name="b"}: +Inf is not a percentage`,
				`resilience4j_circuitbreaker_slow_call_rate{name="b"}: NaN is not a percentage`,
				`resilience4j_circuitbreaker_state{name="a"}: value is not a number`,
			},
		},
		{
			name: "rate over 100",
			text: `resilience4j_circuitbreaker_state{name="a",state="open"} 1
resilience4j_circuitbreaker_failure_rate{name="a"} 150
`,
			wantBreakers: []string{"a=open"},
			wantProblems: []string{`resilience4j_circuitbreaker_failure_rate{name="a"}: 150 is not a percentage`},
		},
		{
			name: "names: slash, control character, missing",
			text: `resilience4j_circuitbreaker_state{name="GET /orders",state="closed"} 1
resilience4j_circuitbreaker_state{name="bad\nname",state="closed"} 1
resilience4j_circuitbreaker_state{state="closed"} 1
`,
			wantBreakers: []string{"GET /orders=closed"},
			wantProblems: []string{
				"breaker \"bad\\nname\": name: \"bad\\nname\" holds the control character U+000A at byte 3",
				`resilience4j_circuitbreaker_state: series without a name label`,
			},
		},
		{
			name: "same name from two formats",
			text: `resilience4j_circuitbreaker_state{name="db",state="open"} 1
payments_circuit_state{target="db"} 0
`,
			wantBreakers: []string{"db=open"},
			wantProblems: []string{`breaker "db": reported as resilience4j and as mapping; keeping resilience4j`},
		},
		{
			name: "envoy: value 2, Istio label, no cluster",
			text: `envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name="a"} 2
envoy_cluster_circuit_breakers_high_cx_open{cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 1
envoy_cluster_circuit_breakers_default_cx_open{} 1
`,
			wantBreakers: []string{"outbound|9080||reviews.default.svc.cluster.local=open"},
			wantProblems: []string{
				`breaker "a" (envoy): no state is set`,
				`envoy_cluster_circuit_breakers_default_cx_open: series without an envoy_cluster_name label`,
				`envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name="a"}: value 2 is neither 0 nor 1`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fams, err := ParseExposition(strings.NewReader(tc.text), ctText)
			if err != nil {
				t.Fatal(err)
			}
			got := MapFamilies(fams, []config.BreakerMapping{paymentsMapping})
			var states []string
			for _, b := range got.Breakers {
				if err := wire.CheckBreaker(&b); err != nil {
					t.Errorf("breaker %q fails Check: %v", b.Name, err)
				}
				states = append(states, b.Name+"="+string(b.State))
			}
			if diff := cmp.Diff(tc.wantBreakers, states); diff != "" {
				t.Errorf("breakers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantProblems, got.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilteredParse checks that skipping unread metrics before parsing gives the same
// breakers for every fixture, and that it does skip them.
func TestFilteredParse(t *testing.T) {
	mappings := []config.BreakerMapping{paymentsMapping}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		if strings.HasSuffix(name, ".om.txt") {
			continue
		}
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		all, err := ParseExposition(strings.NewReader(string(body)), ctText)
		if err != nil {
			t.Fatal(err)
		}
		some, err := parseFiltered(strings.NewReader(string(body)), ctText, wantedNames(mappings))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(MapFamilies(all, mappings), MapFamilies(some, mappings)); diff != "" {
			t.Errorf("%s: filtered parse maps differently (-all +filtered):\n%s", name, diff)
		}
		for _, skipped := range []string{"jvm_threads_live_threads", "resilience4j_circuitbreaker_calls_seconds_max", "envoy_server_live", "envoy_cluster_upstream_rq_time"} {
			if some[skipped] != nil {
				t.Errorf("%s: %s was parsed, want it skipped", name, skipped)
			}
		}
	}
}

func TestParseExpositionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, contentType, want string
	}{
		{"garbage text", "this is { not metrics\n", ctText, "malformed exposition"},
		{"truncated label set", `resilience4j_circuitbreaker_state{name="a`, ctText, "malformed exposition"},
		{"openmetrics without EOF", "# TYPE a gauge\na 1\n", ctOpenMetrics, "malformed exposition"},
		{"too large", "# " + strings.Repeat("x", MaxExpositionBytes) + "\n", ctText, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExposition(strings.NewReader(tc.text), tc.contentType)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzMapFamilies checks that no exposition, however odd, yields a breaker the registry
// would refuse, two breakers of one name, or a panic.
func FuzzMapFamilies(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	mappings := []config.BreakerMapping{paymentsMapping}
	f.Fuzz(func(t *testing.T, data []byte) {
		filtered, ferr := parseFiltered(strings.NewReader(string(data)), ctText, wantedNames(mappings))
		fams, err := ParseExposition(strings.NewReader(string(data)), ctText)
		if err != nil {
			return
		}
		got := MapFamilies(fams, mappings)
		// Skipping the lines of metrics faultline does not read changes nothing.
		if ferr != nil {
			t.Fatalf("the whole exposition parses but its wanted lines do not: %v", ferr)
		}
		if diff := cmp.Diff(got, MapFamilies(filtered, mappings)); diff != "" {
			t.Errorf("filtered parse maps differently (-all +filtered):\n%s", diff)
		}
		if !sort.SliceIsSorted(got.Breakers, func(i, j int) bool { return got.Breakers[i].Name < got.Breakers[j].Name }) {
			t.Error("breakers are not sorted by name")
		}
		reg := breaker.New("fuzz", nil)
		seen := map[string]bool{}
		for _, b := range got.Breakers {
			if seen[b.Name] {
				t.Errorf("breaker %q reported twice", b.Name)
			}
			seen[b.Name] = true
			if _, err := reg.Upsert(b); err != nil {
				t.Errorf("registry refused breaker %q: %v", b.Name, err)
			}
		}
	})
}
