package main

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/agent/client"
	"github.com/faultline-dev/faultline/agent/source/agenttest"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Pattern
		wantErr string
	}{
		{in: "healthy", want: Pattern{Kind: KindHealthy}},
		{in: "steady,errors=2%,latency=20ms", want: Pattern{Kind: KindSteady, ErrorPercent: 2, LatencyMs: 20}},
		{in: "bursts", want: Pattern{Kind: KindBursts, ErrorPercent: 100, BurstEveryMs: 30000, BurstForMs: 5000}},
		{in: "bursts,errors=70%,every=60s,for=8s,latency=15ms", want: Pattern{Kind: KindBursts, ErrorPercent: 70, LatencyMs: 15, BurstEveryMs: 60000, BurstForMs: 8000}},
		{in: "outage", want: Pattern{Kind: KindOutage}},
		{in: "slow,slow=1.5s", want: Pattern{Kind: KindSlow, SlowMs: 1500}},
		{in: "flaky", wantErr: `pattern: "flaky" is not one of healthy, steady, bursts, outage, slow`},
		{in: "steady,errors=150%", wantErr: "error_percent: 150 is not a percentage"},
		{in: "steady,errors=NaN", wantErr: "error_percent: NaN is not a percentage"},
		{in: "steady,errors=lots", wantErr: `errors: "lots" is not a number or duration`},
		{in: "steady,latency=20", wantErr: `latency: "20" is not a number or duration`},
		{in: "steady,colour=red", wantErr: `"colour": unknown option`},
		{in: "steady,errors", wantErr: `"errors": want key=value`},
		{in: "bursts,every=1s,for=2s", wantErr: "burst_for_ms: 2000 is longer than burst_every_ms (1000)"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePattern(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pattern (-want +got):\n%s", diff)
			}
			again, err := ParsePattern(got.String())
			if err != nil || again != got {
				t.Errorf("String() = %q reads back as %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestPatternOutcomes(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	at := time.UnixMilli(1_000_000) // phase 0 of every burst period below
	failures := func(p Pattern, now time.Time) int {
		n := 0
		for range 1000 {
			if _, fail := p.outcome(now, rnd); fail {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		p        Pattern
		now      time.Time
		min, max int // failures out of 1000
		wait     time.Duration
	}{
		{"healthy", Pattern{Kind: KindHealthy, LatencyMs: 5}, at, 0, 0, 5 * time.Millisecond},
		{"outage", Pattern{Kind: KindOutage}, at, 1000, 1000, 0},
		{"steady 10%", Pattern{Kind: KindSteady, ErrorPercent: 10}, at, 60, 140, 0},
		{"inside a burst", Pattern{Kind: KindBursts, ErrorPercent: 100, BurstEveryMs: 10000, BurstForMs: 2000}, at.Add(time.Second), 1000, 1000, 0},
		{"between bursts", Pattern{Kind: KindBursts, ErrorPercent: 100, BurstEveryMs: 10000, BurstForMs: 2000}, at.Add(3 * time.Second), 0, 0, 0},
		{"slow", Pattern{Kind: KindSlow, SlowMs: 2000}, at, 0, 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := failures(tc.p, tc.now); n < tc.min || n > tc.max {
				t.Errorf("%d failures in 1000, want %d to %d", n, tc.min, tc.max)
			}
			if wait, _ := tc.p.outcome(tc.now, rnd); wait != tc.wait {
				t.Errorf("answers after %v, want %v", wait, tc.wait)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"FAULTLINE_PAYMENTS": "outage", "FAULTLINE_LOAD_RPS": "5"}
	cfg, err := LoadConfig([]string{"--load-rps", "7"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoadRPS != 7 || cfg.Dependencies["payments"].Kind != KindOutage || cfg.Dependencies["shipping"].Kind != KindBursts {
		t.Errorf("config = %+v: want the flag over the env, payments from the env, shipping's default", cfg)
	}
	_, err = LoadConfig([]string{"--inventory", "sideways", "--load-rps", "-1", "--ingest-url", "ftp://x", "--log-level", "loud"}, func(string) string { return "" })
	for _, want := range []string{"inventory: pattern:", "load-rps: -1", `ingest-url: "ftp://x"`, `log-level: "loud"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to name %q", err, want)
		}
	}
}

// testDemo is a demo with its dependencies and breakers but no servers running.
func testDemo(t *testing.T) *demo {
	cfg, err := LoadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{cfg: cfg, deps: map[string]*dependency{}, breakers: map[string]*client.Breaker[struct{}]{}}
	d.reporter = client.New(client.Options{AgentURL: "http://127.0.0.1:1", FlushInterval: time.Hour})
	t.Cleanup(func() { d.reporter.Close() })
	d.log = hclog.NewNullLogger()
	for _, name := range dependencyNames {
		d.deps[name] = newDependency(name, cfg.Dependencies[name])
		d.breakers[name] = d.newBreaker(name)
	}
	d.breakers["checkout"] = d.newBreaker("checkout")
	return d
}

func TestControlAPI(t *testing.T) {
	d := testDemo(t)
	h := d.mainHandler()
	do := func(method, path, contentType, body, remote string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	const local, remote, ct = "127.0.0.1:40000", "192.0.2.7:40000", "application/json"
	for _, tc := range []struct {
		name, method, path, contentType, body, from string
		code                                        int
		want                                        string
	}{
		{"list", "GET", "/control/dependencies", "", "", remote, 200, `"name":"inventory"`},
		{"outage", "PUT", "/control/dependencies/payments", ct, `{"pattern":"outage"}`, local, 200, `"spec":"outage"`},
		{"bursts get defaults", "PUT", "/control/dependencies/shipping", ct, `{"pattern":"bursts","error_percent":50}`, local, 200, `"spec":"bursts,errors=50%,every=30s,for=5s"`},
		{"from another host", "PUT", "/control/dependencies/payments", ct, `{"pattern":"healthy"}`, remote, 403, "loopback only"},
		{"not json", "PUT", "/control/dependencies/payments", "text/plain", `{"pattern":"healthy"}`, local, 415, "want application/json"},
		{"unknown dependency", "PUT", "/control/dependencies/billing", ct, `{"pattern":"healthy"}`, local, 404, `no dependency \"billing\"`},
		{"unknown field", "PUT", "/control/dependencies/payments", ct, `{"pattern":"healthy","colour":"red"}`, local, 400, "colour: unknown field"},
		{"bad pattern", "PUT", "/control/dependencies/payments", ct, `{"pattern":"sideways"}`, local, 400, `pattern: \"sideways\" is not one of`},
		{"bad percentage", "PUT", "/control/dependencies/payments", ct, `{"pattern":"steady","error_percent":-3}`, local, 400, "error_percent: -3 is not a percentage"},
		{"malformed", "PUT", "/control/dependencies/payments", ct, `{"pattern":`, local, 400, "body:"},
		{"too large", "PUT", "/control/dependencies/payments", ct, `{"pattern":"` + strings.Repeat("x", maxControlBody) + `"}`, local, 413, "larger than"},
		{"wrong method", "DELETE", "/control/dependencies/payments", "", "", local, 405, `"error":"method not allowed`},
		{"unknown route", "GET", "/nope", "", "", local, 404, `"error":"no route GET /nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.contentType, tc.body, tc.from)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	// Refused requests changed nothing: payments is still in the outage set above.
	if p := d.deps["payments"].pattern(); p.Kind != KindOutage {
		t.Errorf("payments = %+v after refused changes, want the outage", p)
	}
}

// TestDemoWithAgent runs the demo binary and the agent binary: an outage forced through
// the control API opens the payments breaker because its calls really fail, and the
// agent's /v1/stream shows it; ending the outage closes it again.
func TestDemoWithAgent(t *testing.T) {
	agent := agenttest.Start(t, "--sample-interval", "250ms")
	stream := agent.Stream(t)
	listen := testbin.FreeAddr(t, "127.0.0.1")
	bin := testbin.Build(t, "faultline-demo")
	testbin.Start(t, bin, nil, "--listen", listen, "--ingest-url", agent.IngestURL, "--load-rps", "40",
		"--breaker-open-timeout", "1s", "--payments", "healthy,latency=2ms", "--inventory", "healthy", "--shipping", "healthy")
	demoURL := "http://" + listen
	testbin.WaitHTTP(t, demoURL+"/healthz", http.StatusOK, 30*time.Second)
	stream.WaitTransition(t, 10*time.Second, "payments first seen", agenttest.Is("payments", wire.StateClosed))

	put := func(name, body string) {
		t.Helper()
		testbin.PutJSON(t, demoURL+"/control/dependencies/"+name, body)
	}
	put("payments", `{"pattern":"outage"}`)
	opened := stream.WaitTransition(t, 15*time.Second, "payments open", agenttest.Is("payments", wire.StateOpen))
	b := opened.Transition.Breaker
	if b.Source != "gobreaker" || b.Calls.Failed < 10 || b.FailureRate == nil || *b.FailureRate < 50 {
		t.Errorf("open payments breaker = %+v: want source gobreaker, at least 10 failed calls, failure rate >= 50", b)
	}

	put("payments", `{"pattern":"healthy"}`)
	stream.WaitTransition(t, 15*time.Second, "payments half-open", agenttest.Is("payments", wire.StateHalfOpen))
	stream.WaitTransition(t, 15*time.Second, "payments closed", agenttest.Is("payments", wire.StateClosed))

	// The frontend's throughput reaches the agent's samples as the application's own.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case snap := <-stream.Metrics:
			if tp := snap.Sample.Throughput; tp != nil && tp.Source == "app" && tp.RequestsPerSec > 0 && tp.Latency != nil {
				return
			}
		case <-deadline:
			t.Fatal("no sample with the demo's throughput")
		}
	}
}

// FuzzParsePattern checks that a pattern flag either is refused or reads back the same
// from its String form, and always validates.
func FuzzParsePattern(f *testing.F) {
	for _, s := range defaultPatterns {
		f.Add(s)
	}
	for _, s := range []string{"outage", "slow,slow=2s", "bursts,every=1s,for=1s", "steady,errors=%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePattern(%q) = %+v, which does not validate: %v", s, p, err)
		}
		again, err := ParsePattern(p.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, p.String(), err)
		}
		if math.Abs(again.LatencyMs-p.LatencyMs) > 1e-3 || again.Kind != p.Kind || again.ErrorPercent != p.ErrorPercent {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, p, p.String(), again)
		}
	})
}
