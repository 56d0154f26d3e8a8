package agent

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestSnapshotAndProbes(t *testing.T) {
	a := newTestAgent(t, nil)
	h := a.mainHandler()

	if code, body, _ := do(t, h, "GET", "/readyz", "", ""); code != 503 || !strings.Contains(body, "no sample taken yet") {
		t.Errorf("readyz before the first sample: %d %s", code, body)
	}
	if code, body, _ := do(t, h, "GET", "/healthz", "", ""); code != 200 || body != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, body, _ := do(t, h, "GET", "/v1/snapshot", "", "")
	var snap wire.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); code != 200 || err != nil || snap.Sample != nil || snap.Breakers == nil {
		t.Errorf("snapshot before the first sample: %d %s (%v); want sample null, breakers []", code, body, err)
	}

	a.reg.Upsert(wire.Breaker{Name: "payments", State: wire.StateOpen, Source: "push"})
	a.tick(context.Background())
	if code, body, _ := do(t, h, "GET", "/readyz", "", ""); code != 200 {
		t.Errorf("readyz after a sample: %d %s", code, body)
	}
	_, body, _ = do(t, h, "GET", "/v1/snapshot", "", "")
	snap = wire.Snapshot{}
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.V != 1 || snap.Agent.ID != "shop/checkout-7d9fb8c5d4-x2kzq" || snap.Agent.Workload != "checkout" ||
		snap.Sample == nil || snap.Sample.Memory == nil || len(snap.Breakers) != 1 || snap.Seq != 2 {
		t.Errorf("snapshot after a transition and a sample (seq 2): %s", body)
	}
	names := []string{}
	for _, c := range snap.Sample.Collectors {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"cpu", "memory", "load", "processes", "network", "self", "throughput", "breakers"}, names); diff != "" {
		t.Errorf("collectors in the sample (-want +got):\n%s", diff)
	}
	// What the agent sends passes the checks the aggregator applies to it.
	if err := wire.CheckSnapshot(&snap); err != nil {
		t.Errorf("the agent's own snapshot fails the wire's checks: %v", err)
	}
}

func TestMainRoutes(t *testing.T) {
	h := newTestAgent(t, nil).mainHandler()
	tests := []struct {
		method, path string
		code         int
		want, allow  string
	}{
		{"GET", "/v1/nothing", 404, "no such endpoint: /v1/nothing", ""},
		{"GET", "/", 404, "no such endpoint: /", ""},
		{"POST", "/v1/snapshot", 405, "method POST is not allowed on /v1/snapshot; allowed: GET, HEAD", "GET, HEAD"},
		{"DELETE", "/v1/stream", 405, "allowed: GET, HEAD", "GET, HEAD"},
		{"PUT", "/metrics", 405, "allowed: GET, HEAD", "GET, HEAD"},
		{"POST", "/healthz", 405, "allowed: GET, HEAD", "GET, HEAD"},
		{"GET", "/v1/cleanup-memory", 405, "allowed: POST", "POST"},
		{"PUT", "/v1/breakers/db", 404, "no such endpoint", ""}, // writes go to the ingest listener only
	}
	for _, tt := range tests {
		code, body, hdr := do(t, h, tt.method, tt.path, "", "")
		if code != tt.code || !strings.Contains(errorOf(t, body), tt.want) || hdr.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %s Allow=%q; want %d %q Allow=%q", tt.method, tt.path, code, body, hdr.Get("Allow"), tt.code, tt.want, tt.allow)
		}
	}
}

func TestCleanupMemory(t *testing.T) {
	remote := func(r *http.Request) { r.RemoteAddr = "10.0.0.9:41000" }
	loopback6 := func(r *http.Request) { r.RemoteAddr = "[::1]:41000" }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	origin := func(o string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("Origin", o) } }
	tests := []struct {
		name  string
		token string
		ctype string
		edit  []func(*http.Request)
		code  int
		want  string
	}{
		{"loopback", "", jsonType, nil, 200, ""},
		{"loopback IPv6", "", jsonType, []func(*http.Request){loopback6}, 200, ""},
		{"loopback with a token configured", "s3cret", jsonType, nil, 200, ""},
		{"remote with the token", "s3cret", jsonType, []func(*http.Request){remote, bearer("s3cret")}, 200, ""},
		{"remote without a token configured", "", jsonType, []func(*http.Request){remote}, 403, "allowed only from loopback: no token is configured"},
		{"remote with a token but none configured", "", jsonType, []func(*http.Request){remote, bearer("guess")}, 401, "Authorization: no token is configured"},
		{"loopback with a token but none configured", "", jsonType, []func(*http.Request){bearer("guess")}, 401, "Authorization: no token is configured"},
		{"remote without the token", "s3cret", jsonType, []func(*http.Request){remote}, 401, "a bearer token is required"},
		{"remote with a wrong token", "s3cret", jsonType, []func(*http.Request){remote, bearer("s3cre")}, 401, "is not faultline-agent's token"},
		{"loopback with a wrong token", "s3cret", jsonType, []func(*http.Request){bearer("nope")}, 401, "is not faultline-agent's token"},
		{"cross-origin browser", "", jsonType, []func(*http.Request){origin("http://evil.example")}, 403, `cross-origin request from "http://evil.example" refused`},
		{"same-origin browser", "", jsonType, []func(*http.Request){origin("http://example.com")}, 200, ""},
		{"form post", "", "application/x-www-form-urlencoded", nil, 415, "Content-Type: want application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestAgent(t, func(c *config.Agent) { c.Token = tt.token }).mainHandler()
			edit := append([]func(*http.Request){func(r *http.Request) { r.RemoteAddr = "127.0.0.1:41000" }}, tt.edit...)
			code, body, hdr := do(t, h, "POST", "/v1/cleanup-memory", tt.ctype, "{}", edit...)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if tt.code != 200 {
				if got := errorOf(t, body); !strings.Contains(got, tt.want) {
					t.Errorf("error %q does not contain %q", got, tt.want)
				}
				if tt.code == 401 && hdr.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			var res cleanupResult
			if err := json.Unmarshal([]byte(body), &res); err != nil || res.Before.HeapBytes == 0 || res.After.HeapBytes == 0 ||
				res.Before.RSSBytes == nil || res.After.RSSBytes == nil || res.FreedBytes != int64(res.Before.HeapBytes)-int64(res.After.HeapBytes) {
				t.Errorf("answer %s (%v): want figures before and after", body, err)
			}
		})
	}
}

// metricsAgent is an agent in a known state for /metrics: two samples taken, then the
// golden sample in place; two breakers (one stale, one transition into each state);
// requests answered on both listeners. It returns the main handler.
func metricsAgent(t *testing.T) http.Handler {
	t.Helper()
	a := newTestAgent(t, nil)
	a.id.Version, a.id.Node = "v0.1.0", "node-1"
	for range 2 {
		a.tick(context.Background())
	}
	h, ingest := a.mainHandler(), a.ingestHandler()
	for _, r := range []struct {
		h            http.Handler
		method, path string
	}{
		{h, "GET", "/healthz"}, {h, "GET", "/healthz"}, {h, "PUT", "/metrics"}, {h, "GET", "/nope"},
		{ingest, "GET", "/v1/breakers"}, {ingest, "POST", "/v1/throughput"},
	} {
		do(t, r.h, r.method, r.path, "", "")
	}
	for _, b := range []wire.Breaker{
		{Name: "payments", State: wire.StateOpen, Source: "push", FailureRate: wire.Ptr(62.5), Calls: wire.Calls{Succeeded: 30, Failed: 50, Rejected: 12, TimedOut: 3}},
		{Name: "inventory", State: wire.StateClosed, Source: "prometheus"},
	} {
		if _, err := a.reg.Upsert(b); err != nil {
			t.Fatal(err)
		}
	}
	a.reg.MarkStale("prometheus")
	var golden wire.Sample
	if err := json.Unmarshal(readFile(t, "../internal/wire/testdata/sample.json"), &golden); err != nil {
		t.Fatal(err)
	}
	golden.Load = &wire.Load{Load1: 0.5, Load5: 0.4, Load15: 0.3}
	a.mu.Lock()
	a.latest = &golden
	a.mu.Unlock()
	return h
}

// TestMetricsExposition pins the Prometheus text for a known state
// (testdata/metrics.golden; -update rewrites it): every family's name, help, type,
// labels and values, the request and sample counters included.
func TestMetricsExposition(t *testing.T) {
	code, body, hdr := do(t, metricsAgent(t), "GET", "/metrics", "", "")
	if code != 200 || hdr.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8; escaping=underscores" {
		t.Fatalf("GET /metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(string(readFile(t, path)), body); diff != "" {
		t.Errorf("exposition differs from %s (-want +got):\n%s", path, diff)
	}
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "faultline_agent_") {
			t.Errorf("metric without the faultline_agent_ prefix: %s", line)
		}
	}
}

// TestMetricsFormats: /metrics answers each scraper in the format it asks for (the
// Prometheus text format unless it asks for delimited protobuf), never compressed (a
// gzip writer allocates about 0.8 MB per scrape), and every format carries the same
// series as the golden text.
func TestMetricsFormats(t *testing.T) {
	const (
		prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
		protobuf    = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6," + prometheus3
		textType    = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	)
	want := series(t, string(readFile(t, filepath.Join("testdata", "metrics.golden"))), textType)
	for _, tc := range []struct {
		name, accept, encoding string
		wantType               string
	}{
		{"no Accept", "", "", textType},
		{"Prometheus 3 default", prometheus3, "", textType},
		{"Prometheus 3 with gzip", prometheus3, "gzip", textType},
		{"OpenMetrics only", "application/openmetrics-text;version=1.0.0", "", textType},
		{"delimited protobuf", protobuf, "gzip", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := metricsAgent(t)
			r := httptest.NewRequest("GET", "/metrics", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			if tc.encoding != "" {
				r.Header.Set("Accept-Encoding", tc.encoding)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			resp := w.Result()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.wantType || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("GET /metrics: %d, Content-Type %q, Content-Encoding %q; want 200, %q, none", resp.StatusCode,
					resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"), tc.wantType)
			}
			if diff := cmp.Diff([]string{"Accept"}, resp.Header.Values("Vary")); diff != "" {
				t.Errorf("Vary (-want +got):\n%s", diff)
			}
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, series(t, string(raw), resp.Header.Get("Content-Type"))); diff != "" {
				t.Errorf("series differ from the golden text (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMetricsScrapeLimit: scrapes beyond the fourth at once are turned away with 503
// and a JSON error, and /metrics answers again once one finishes.
func TestMetricsScrapeLimit(t *testing.T) {
	a := newTestAgent(t, nil)
	h := a.mainHandler()
	for range maxScrapes {
		a.metrics.inFlight <- struct{}{}
	}
	code, body, _ := do(t, h, "GET", "/metrics", "", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(errorOf(t, body), "try again later") {
		t.Errorf("GET /metrics with %d scrapes in flight: %d %s, want 503", maxScrapes, code, body)
	}
	<-a.metrics.inFlight
	if code, body, _ := do(t, h, "GET", "/metrics", "", ""); code != http.StatusOK || !strings.Contains(body, "faultline_agent_info") {
		t.Errorf("GET /metrics after one finished: %d %s", code, body)
	}
}

// series decodes an exposition into one line per family (type, name, help) followed by
// one line per series (name, labels, value), families in name order: the text decoder
// does not keep the order it read them in.
func series(t *testing.T, body, contentType string) []string {
	t.Helper()
	dec := expfmt.NewDecoder(strings.NewReader(body), expfmt.Format(contentType))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("decode %s: %v", contentType, err)
		}
		fams = append(fams, mf)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	var out []string
	for _, mf := range fams {
		out = append(out, fmt.Sprintf("# %s %s %q", mf.GetType(), mf.GetName(), mf.GetHelp()))
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), v))
		}
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamDeliversTransitionsAtOnce: with no sampling tick due for a minute, a
// pushed transition still reaches a stream client at once, after the snapshot.
func TestStreamDeliversTransitionsAtOnce(t *testing.T) {
	a := newTestAgent(t, func(c *config.Agent) { c.SampleInterval = time.Minute })
	srv := httptest.NewServer(a.mainHandler())
	defer srv.Close()
	ingest := httptest.NewServer(a.ingestHandler())
	defer ingest.Close()

	resp, err := http.Get(srv.URL + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan wire.Event, 16)
	go func() {
		for ev, err := range wire.ReadEvents(resp.Body, 0) {
			if err != nil {
				break
			}
			events <- ev
		}
		close(events)
	}()
	next := func() wire.Event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5 s")
		}
		return wire.Event{}
	}
	if ev := next(); ev.Name != wire.EventSnapshot || ev.ID != a.hub.ID(0) {
		t.Fatalf("first event %q id %q, want a snapshot with id %s", ev.Name, ev.ID, a.hub.ID(0))
	}
	req, _ := http.NewRequest("PUT", ingest.URL+"/v1/breakers/payments", strings.NewReader(`{"state":"open"}`))
	req.Header.Set("Content-Type", jsonType)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	ev := next()
	var tr wire.Transition
	if err := wire.Decode(ev, &tr); err != nil || ev.Name != wire.EventCircuitBreaker || ev.ID != a.hub.ID(1) ||
		tr.Agent != "shop/checkout-7d9fb8c5d4-x2kzq" || tr.From != "" || tr.To != wire.StateOpen {
		t.Errorf("event %q id %q: %+v (%v)", ev.Name, ev.ID, tr, err)
	}
	a.tick(context.Background())
	if ev := next(); ev.Name != wire.EventMetrics {
		t.Errorf("after a tick: %q, want metrics", ev.Name)
	}
	a.hub.Close()
	for range events { // the stream ends when the agent shuts down
	}
}

func TestRunStopsAndReportsListenErrors(t *testing.T) {
	cfg := config.DefaultAgent()
	cfg.Mode, cfg.Listen, cfg.IngestListen = config.ModeHost, "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(t)) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}

	cfg.IngestListen = "256.0.0.1:1"
	err := Run(context.Background(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "--ingest-listen") {
		t.Errorf("Run with a bad ingest address: %v, want an error naming --ingest-listen", err)
	}
}
