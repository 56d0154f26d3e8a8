package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
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

// testDemo is a demo of the role args give (all by default) with its dependencies and
// breakers but no servers running.
func testDemo(t *testing.T, args ...string) *demo {
	cfg, err := LoadConfig(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	reporter := client.New(client.Options{AgentURL: "http://127.0.0.1:1", FlushInterval: time.Hour})
	t.Cleanup(func() { reporter.Close() })
	return newDemo(cfg, hclog.NewNullLogger(), reporter)
}

func TestLoadConfigRoles(t *testing.T) {
	deps := []string{"--payments-url=http://pay:9810", "--inventory-url=http://inv:9810/", "--shipping-url=https://ship.example:443"}
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantURLs map[string]string
		wantErrs []string // each must be in the error; none: no error
	}{
		{name: "all by default", wantURLs: map[string]string{}},
		{name: "frontend", args: []string{"--role=frontend", "--checkout-url=http://faultline-demo-checkout:9810"},
			wantURLs: map[string]string{"checkout": "http://faultline-demo-checkout:9810"}},
		{name: "role and URL from the env", env: map[string]string{"FAULTLINE_ROLE": "frontend", "FAULTLINE_CHECKOUT_URL": "http://checkout:9810"},
			wantURLs: map[string]string{"checkout": "http://checkout:9810"}},
		{name: "checkout", args: append([]string{"--role=checkout"}, deps...),
			wantURLs: map[string]string{"payments": "http://pay:9810", "inventory": "http://inv:9810", "shipping": "https://ship.example:443"}},
		{name: "a dependency calls nobody", args: []string{"--role=payments"}, wantURLs: map[string]string{}},
		{name: "unknown role", args: []string{"--role=cart"},
			wantErrs: []string{`role: "cart" is not one of all, frontend, checkout, payments, inventory, shipping`}},
		{name: "frontend without the checkout", args: []string{"--role=frontend"},
			wantErrs: []string{"checkout-url: required with --role=frontend"}},
		{name: "checkout without its dependencies", args: []string{"--role=checkout", "--payments-url=http://pay:9810"},
			wantErrs: []string{"inventory-url: required with --role=checkout", "shipping-url: required with --role=checkout"}},
		{name: "not http URLs", args: []string{"--role=checkout", "--payments-url=pay:9810", "--inventory-url=ftp://inv", "--shipping-url=http://ship/?x=1"},
			wantErrs: []string{`payments-url: "pay:9810" is not an http URL`, `inventory-url: "ftp://inv" is not an http URL`, `shipping-url: "http://ship/?x=1" is not an http URL`}},
		{name: "URL the role does not call", args: []string{"--role=frontend", "--checkout-url=http://checkout:9810", "--payments-url=http://pay:9810"},
			wantErrs: []string{"payments-url: --role=frontend does not call payments; the URL is only for --role=checkout"}},
		{name: "URL with role all", args: []string{"--checkout-url=http://checkout:9810"},
			wantErrs: []string{"checkout-url: --role=all serves checkout itself; the URL is only for --role=frontend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.args, func(k string) string { return tc.env[k] })
			if len(tc.wantErrs) > 0 {
				for _, want := range tc.wantErrs {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("error = %v, want it to say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantURLs, cfg.PeerURLs); diff != "" {
				t.Errorf("peer URLs (-want +got):\n%s", diff)
			}
		})
	}
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

// TestControlAPIByRole checks what a process of one service offers: only its own
// dependency and its own breakers, and a usage text saying where its calls go.
func TestControlAPIByRole(t *testing.T) {
	get := func(d *demo, path string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		d.mainHandler().ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	payments := testDemo(t, "--role=payments", "--payments=outage")
	checkout := testDemo(t, "--role=checkout", "--payments-url=http://pay:9810", "--inventory-url=http://inv:9810", "--shipping-url=http://ship:9810")
	frontend := testDemo(t, "--role=frontend", "--checkout-url=http://checkout:9810")
	all := testDemo(t)
	for _, tc := range []struct {
		name string
		d    *demo
		path string
		code int
		want []string
	}{
		{"payments lists itself", payments, "/control/dependencies", 200, []string{`"name":"payments"`, `"spec":"outage"`}},
		{"payments has no breaker state of the checkout", payments, "/control/dependencies/payments", 200, []string{`"served":0`}},
		{"payments serves no other dependency", payments, "/control/dependencies/inventory", 404, []string{`no dependency \"inventory\" (have payments)`}},
		{"payments has no breakers", payments, "/control/breakers", 200, []string{"[]"}},
		{"payments usage", payments, "/", 200, []string{"(--role=payments): the payments dependency, called by checkout", "POST /charge", "PUT  /control/dependencies/payments"}},
		{"checkout serves no dependency", checkout, "/control/dependencies/payments", 404, []string{`no dependency \"payments\" here (--role=checkout serves none`}},
		{"checkout lists none", checkout, "/control/dependencies", 200, []string{"[]"}},
		{"checkout breakers", checkout, "/control/breakers", 200, []string{`[{"name":"payments","state":"closed"`, `{"name":"inventory"`, `{"name":"shipping"`}},
		{"checkout usage", checkout, "/", 200, []string{"checkout -> inventory at http://inv:9810, payments at http://pay:9810, shipping at http://ship:9810", "POST /checkout"}},
		{"frontend breakers", frontend, "/control/breakers", 200, []string{`[{"name":"checkout","state":"closed"`}},
		{"frontend usage", frontend, "/", 200, []string{"frontend -> checkout at http://checkout:9810", "GET  /buy"}},
		{"all: every breaker, in order", all, "/control/breakers", 200, []string{`[{"name":"checkout"`, `},{"name":"payments"`, `},{"name":"inventory"`, `},{"name":"shipping"`}},
		{"all: the checkout's breaker beside each dependency", all, "/control/dependencies/payments", 200, []string{`"breaker_state":"closed"`}},
		{"all usage", all, "/", 200, []string{"frontend -> checkout -> payments, inventory, shipping, in one process", "GET  /control/dependencies ", "GET  /healthz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.d, tc.path)
			if code != tc.code {
				t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.code)
			}
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("GET %s: %s\nwant it to contain %q", tc.path, body, want)
				}
			}
			if strings.HasPrefix(tc.path, "/control/dependencies/") && tc.d.cfg.Role != RoleAll && strings.Contains(body, "breaker_state") {
				t.Errorf("GET %s: %s: a split dependency cannot know the checkout's breaker", tc.path, body)
			}
		})
	}
}

// TestSplitRoles runs the five services as five servers, each its own Run with its own
// --role, calling one another over real HTTP as the chart's Deployments do. An outage
// set through the payments service's control API opens the "payments" breaker of the
// checkout service (reported to the checkout's agent under that name), and the frontend's
// "checkout" breaker after it; ending the outage closes the checkout's breaker again.
func TestSplitRoles(t *testing.T) {
	agent := agenttest.Start(t, "--sample-interval", "250ms")
	stream := agent.Stream(t)
	addr := map[string]string{}
	for _, name := range serviceNames {
		addr[name] = testbin.FreeAddr(t, "127.0.0.1")
	}
	url := func(name string) string { return "http://" + addr[name] }
	common := []string{"--breaker-open-timeout=1s", "--ingest-url=http://" + testbin.FreeAddr(t, "127.0.0.1")}
	args := map[string][]string{
		"payments":  {"--payments=healthy,latency=2ms"},
		"inventory": {"--inventory=healthy"},
		"shipping":  {"--shipping=healthy"},
		"checkout": {"--payments-url=" + url("payments"), "--inventory-url=" + url("inventory"), "--shipping-url=" + url("shipping"),
			"--ingest-url=" + agent.IngestURL},
		"frontend": {"--checkout-url=" + url("checkout"), "--load-rps=40"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := map[string]chan error{}
	for _, name := range serviceNames {
		cfg, err := LoadConfig(append(append([]string{"--role=" + name, "--listen=" + addr[name]}, common...), args[name]...), func(string) string { return "" })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ch := make(chan error, 1)
		done[name] = ch
		go func() { ch <- Run(ctx, cfg, hclog.NewNullLogger()) }()
	}
	t.Cleanup(func() {
		cancel()
		for name, ch := range done {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("%s: Run: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s: Run did not return after its context ended", name)
			}
		}
	})
	for _, name := range serviceNames {
		testbin.WaitHTTP(t, url(name)+"/healthz", http.StatusOK, 10*time.Second)
	}

	type breaker struct {
		Name   string
		State  string
		Counts struct{ Requests, TotalFailures uint32 } `json:"window_counts"`
	}
	breakers := func(name string) map[string]breaker {
		resp, err := http.Get(url(name) + "/control/breakers")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []breaker
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		out := map[string]breaker{}
		for _, b := range list {
			out[b.Name] = b
		}
		return out
	}
	waitState := func(service, name, state string, minRequests uint32) {
		t.Helper()
		testbin.Eventually(t, 15*time.Second, func() error {
			b, ok := breakers(service)[name]
			if !ok || b.State != state || b.Counts.Requests < minRequests {
				return fmt.Errorf("%s's %q breaker: %+v, want %s with at least %d requests", service, name, b, state, minRequests)
			}
			return nil
		})
	}
	// The load reaches the checkout's dependencies through the frontend, over HTTP.
	waitState("checkout", "payments", "closed", 10)
	if got := slices.Sorted(maps.Keys(breakers("checkout"))); !slices.Equal(got, []string{"inventory", "payments", "shipping"}) {
		t.Errorf("checkout breakers %v, want inventory, payments, shipping", got)
	}
	if got := slices.Sorted(maps.Keys(breakers("frontend"))); !slices.Equal(got, []string{"checkout"}) {
		t.Errorf("frontend breakers %v, want checkout", got)
	}

	testbin.PutJSON(t, url("payments")+"/control/dependencies/payments", `{"pattern":"outage"}`)
	waitState("checkout", "payments", "open", 0)
	opened := stream.WaitTransition(t, 15*time.Second, "payments open at the checkout's agent", agenttest.Is("payments", wire.StateOpen))
	if b := opened.Transition.Breaker; b.Source != "gobreaker" || b.Calls.Failed < 10 {
		t.Errorf("open payments breaker = %+v: want source gobreaker, at least 10 failed calls", b)
	}
	// The checkout now answers 503, so the frontend's breaker in front of it trips too.
	waitState("frontend", "checkout", "open", 0)

	testbin.PutJSON(t, url("payments")+"/control/dependencies/payments", `{"pattern":"healthy"}`)
	stream.WaitTransition(t, 15*time.Second, "payments closed at the checkout's agent", agenttest.Is("payments", wire.StateClosed))
	waitState("checkout", "payments", "closed", 0)
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
