package main

import (
	"fmt"
	"io"
	"net"
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
	"github.com/prometheus/common/model"

	"github.com/faultline-dev/faultline/agent/exposition"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// get answers GET /metrics from a simulated agent with the Accept header accept.
func get(t *testing.T, a *simAgent, accept string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Set("Accept", accept)
	w := httptest.NewRecorder()
	agentMux(a).ServeHTTP(w, r)
	return w.Result()
}

// want is what the agent's exposition serves for the simulated agent's state now.
func want(t *testing.T, a *simAgent, accept string) *http.Response {
	t.Helper()
	a.mu.Lock()
	st := a.state(a.figures())
	a.mu.Unlock()
	h := http.Header{"Accept": {accept}}
	w := httptest.NewRecorder()
	if err := exposition.Write(w, exposition.Format(h), exposition.Families(st)); err != nil {
		t.Fatal(err)
	}
	return w.Result()
}

// TestSimMetricsMatchAgent: a simulated agent's /metrics is byte for byte what the
// agent's exposition writes for the same state (identity, sample, breakers, counters),
// in each format a scraper may ask for, before its first sample, after ticks (figures
// spliced into the cached text), after breaker flips and with new counters (the text
// encoded again), with a zero figure, and for an age probe.
func TestSimMetricsMatchAgent(t *testing.T) {
	protobuf := "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6," + promAccept
	for _, probe := range []bool{false, true} {
		a := newSimAgent(401)
		a.ageProbe = probe
		now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
		steps := []struct {
			name string
			do   func()
		}{
			{"before the first sample", func() {}},
			{"first sample", func() { a.tick(now) }},
			{"second sample", func() { a.tick(now.Add(time.Second)) }},
			{"breaker flip", func() { a.flip() }},
			{"two more flips and a sample", func() { a.flip(); a.flip(); a.tick(now.Add(2 * time.Second)) }},
			{"an ended stream", func() { a.mu.Lock(); a.prom.answered("/v1/stream"); a.mu.Unlock() }},
			{"zero errors per second", func() {
				a.tick(now.Add(3 * time.Second))
				a.mu.Lock()
				a.prom.fig[figErrors] = 0
				a.mu.Unlock()
			}},
		}
		for _, s := range steps {
			s.do()
			for _, accept := range []string{promAccept, "", protobuf} {
				// Twice: the first scrape may build the cached text, the second uses it.
				for range 2 {
					w := want(t, a, accept)
					got := get(t, a, accept)
					if got.StatusCode != http.StatusOK {
						t.Fatalf("%s: GET /metrics: %s", s.name, got.Status)
					}
					for _, h := range []string{"Content-Type", "Vary", "Content-Encoding"} {
						if got.Header.Get(h) != w.Header.Get(h) {
							t.Errorf("probe %v, %s, Accept %q: %s %q, the agent's %q", probe, s.name, accept, h, got.Header.Get(h), w.Header.Get(h))
						}
					}
					wb, _ := io.ReadAll(w.Body)
					gb, _ := io.ReadAll(got.Body)
					if diff := cmp.Diff(string(wb), string(gb)); diff != "" {
						t.Fatalf("probe %v, %s, Accept %q: the simulator's /metrics differs from the agent's exposition (-agent +simulator):\n%s", probe, s.name, accept, diff)
					}
				}
			}
		}
		fams := parse(t, scrapeText(t, a))
		ws := fams["faultline_agent_memory_working_set_bytes"].GetMetric()[0].GetGauge().GetValue()
		if marker := float64(ageMarker(now.Add(3 * time.Second))); (ws == marker) != probe {
			t.Errorf("age probe %v: working set %v, sample time marker %v", probe, ws, marker)
		}
	}
}

func scrapeText(t *testing.T, a *simAgent) string {
	t.Helper()
	b, _ := io.ReadAll(get(t, a, promAccept).Body)
	return string(b)
}

// TestSimMetricsFamiliesAreTheAgents: every family a simulated agent serves is one the
// real agent serves (testdata of package agent), with the same type, help and label
// names; the agent's families the simulator lacks are those with no series for its
// state (no host load, no request refused).
func TestSimMetricsFamiliesAreTheAgents(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("..", "..", "agent", "testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	a := newSimAgent(7)
	a.tick(time.Now())
	a.flip()
	get(t, a, promAccept)
	agent, sim := shapes(t, string(golden)), shapes(t, scrapeText(t, a))
	var missing []string
	for name, shape := range agent {
		s, ok := sim[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if diff := cmp.Diff(shape, s); diff != "" {
			t.Errorf("family %s (-agent +simulator):\n%s", name, diff)
		}
		delete(sim, name)
	}
	for name := range sim {
		t.Errorf("the simulator serves %s, which the agent does not", name)
	}
	slices.Sort(missing)
	if diff := cmp.Diff([]string{"faultline_agent_http_refused_total", "faultline_agent_load_average"}, missing); diff != "" {
		t.Errorf("families the simulator lacks (-want +got):\n%s", diff)
	}
}

// shapes is each family's type, help and the label names of its series.
func shapes(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, f := range parse(t, text) {
		shape := []string{f.GetType().String(), f.GetHelp()}
		for _, m := range f.Metric {
			shape = append(shape, strings.Join(labelNames(m), ","))
		}
		out[name] = slices.Compact(shape)
	}
	return out
}

func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func labelNames(m *dto.Metric) []string {
	var names []string
	for _, l := range m.Label {
		names = append(names, l.GetName())
	}
	return names
}

// TestPrometheusScrapesSim: a real Prometheus, configured as the comparison configures
// it, scrapes simulated agents every second: every target up, every breaker's series
// stored, and the age probes' sample times readable and recent through its HTTP API.
func TestPrometheusScrapesSim(t *testing.T) {
	bin := testbin.Tool(t, "prometheus", "make tools installs it into bin/")
	const n = 40 // a workload of namespace ns-00 (age probes), one of ns-01
	first, err := net.Listen("tcp", agentAddr(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	port := first.Addr().(*net.TCPAddr).Port
	agents := make([]*simAgent, n)
	for i := range agents {
		a := newSimAgent(i)
		a.ageProbe = isAgeProbe(i)
		agents[i] = a
		ln := first
		if i > 0 {
			if ln, err = net.Listen("tcp", agentAddr(i, port)); err != nil {
				t.Fatal(err)
			}
		}
		srv := &http.Server{Handler: agentMux(a), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() { // agents tick every second, as in the benchmark, until the test ends
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			now := time.Now()
			for _, a := range agents {
				a.tick(now)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(promConfig(n, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testbin.FreeAddr(t, "127.0.0.1")
	testbin.Start(t, bin, nil, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	testbin.Eventually(t, time.Minute, func() error {
		up, err := promQuery(addr, "count(up == 1)", time.Time{})
		if err == nil && up != n {
			err = fmt.Errorf("%v of %d targets up", up, n)
		}
		return err
	})
	for q, want := range map[string]float64{
		`count(faultline_agent_breaker_state)`:                               n * breakersPerPod * 5,
		`count(faultline_agent_breaker_state{namespace="ns-01"} == 1)`:       podsPerWorkload * breakersPerPod,
		`count(faultline_agent_info{exported_namespace="ns-00"})`:            podsPerWorkload,
		`count(faultline_agent_memory_working_set_bytes{namespace="ns-00"})`: podsPerWorkload,
	} {
		if got, err := promQuery(addr, q, time.Time{}); err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", q, got, err, want)
		}
	}
	marker, err := promQuery(addr, `avg(faultline_agent_memory_working_set_bytes{namespace="ns-00"})`, time.Time{})
	if age := markerAge(time.Now(), marker); err != nil || age < 0 || age > 5*time.Second {
		t.Errorf("age of the probes' samples in Prometheus: %v (%v), want 0 to 5 s", age, err)
	}
}
