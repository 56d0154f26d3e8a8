package source

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/config"
)

// exposition is a real HTTP server on loopback serving an exposition that the test
// changes over time.
type exposition struct {
	*httptest.Server
	mu          sync.Mutex
	body        string
	status      int
	contentType string
	served      time.Time // when the body last set was first served
}

func newExposition(t testing.TB, body string) *exposition {
	e := &exposition{body: body, status: http.StatusOK, contentType: ctText}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.served.IsZero() {
			e.served = time.Now()
		}
		w.Header().Set("Content-Type", e.contentType)
		w.WriteHeader(e.status)
		fmt.Fprint(w, e.body)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *exposition) set(status int, body string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.body, e.served = status, body, time.Time{}
}

// servedAt is when the body last set was first served, zero if not yet.
func (e *exposition) servedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.served
}

func TestPrometheusTransitions(t *testing.T) {
	srv := newExposition(t, "")
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	reg := newRecorder()
	for _, state := range []string{"closed", "open", "open", "half_open", "closed"} {
		srv.set(http.StatusOK, r4jExposition(map[string]string{"payments": state, "inventory": "closed"}))
		p.Scrape(context.Background(), reg.Registry)
	}
	want := []string{
		"inventory:>closed", "payments:>closed",
		"payments:closed>open", "payments:open>half_open", "payments:half_open>closed",
	}
	if diff := cmp.Diff(want, reg.transitions()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	b, _ := reg.Get("payments")
	if b.Source != NamePrometheus || b.Calls.Succeeded != 10 || b.FailureRate != nil {
		t.Errorf("payments = %+v, want source prometheus, 10 successful calls, unknown failure rate", b)
	}
	if st := p.Status(); !st.OK || !strings.HasPrefix(st.Status, "last scrape ") || !strings.HasSuffix(st.Status, " ago, 2 breakers") {
		t.Errorf("status = %+v, want ok and \"last scrape ... ago, 2 breakers\"", st)
	}
}

// TestPrometheusFailures checks that every kind of failed scrape keeps the breakers, marks
// them stale and says why, and that the next good scrape makes them fresh again.
func TestPrometheusFailures(t *testing.T) {
	good := r4jExposition(map[string]string{"payments": "open", "inventory": "closed"})
	srv := newExposition(t, good)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	for _, tc := range []struct {
		name   string
		status int
		body   string
		url    string
		want   string
	}{
		{name: "server error", status: http.StatusInternalServerError, body: "oops", want: "unavailable: HTTP 500 Internal Server Error"},
		{name: "garbage", status: http.StatusOK, body: "resilience4j_circuitbreaker_state{name=} <html>", want: "unavailable: malformed exposition"},
		{name: "truncated", status: http.StatusOK, body: good[:len(good)/2] + `resilience4j_circuitbreaker_state{name="pay`, want: "unavailable: malformed exposition"},
		{name: "connection refused", url: refusedURL, want: "unavailable: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(http.StatusOK, good)
			p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
			reg := newRecorder()
			p.Scrape(context.Background(), reg.Registry)
			before, _ := reg.Get("payments")

			if tc.url != "" {
				p.opts.URL = tc.url
			} else {
				srv.set(tc.status, tc.body)
			}
			p.Scrape(context.Background(), reg.Registry)
			if diff := cmp.Diff([]string{"inventory=closed stale", "payments=open stale"}, reg.states()); diff != "" {
				t.Errorf("after the failure (-want +got):\n%s", diff)
			}
			after, _ := reg.Get("payments")
			if !after.LastSeen.Equal(before.LastSeen.Time) {
				t.Errorf("last seen moved from %v to %v on a failed scrape", before.LastSeen, after.LastSeen)
			}
			st := p.Status()
			if st.OK || !strings.HasPrefix(st.Status, tc.want) || !strings.Contains(st.Status, "2 breakers kept as stale") {
				t.Errorf("status = %+v, want not ok, %q, and the stale breakers", st, tc.want)
			}

			p.opts.URL = srv.URL
			srv.set(http.StatusOK, good)
			p.Scrape(context.Background(), reg.Registry)
			if diff := cmp.Diff([]string{"inventory=closed", "payments=open"}, reg.states()); diff != "" {
				t.Errorf("after recovery (-want +got):\n%s", diff)
			}
			if len(reg.transitions()) != 2 {
				t.Errorf("transitions = %v: a failed scrape must not look like a change of state", reg.transitions())
			}
		})
	}
}

func TestPrometheusWebPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html><body>Whitelabel Error Page</body></html>")
	}))
	defer srv.Close()
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	p.Scrape(context.Background(), newRecorder().Registry)
	if st := p.Status(); st.OK || st.Status != "unavailable: content type text/html is not a metrics exposition" {
		t.Errorf("status = %+v, want the content type named", st)
	}
}

// TestPrometheusNoBreakerMetrics points the source at an endpoint that works but holds
// no breaker metrics: the status must say so rather than just "0 breakers".
func TestPrometheusNoBreakerMetrics(t *testing.T) {
	srv := newExposition(t, "# TYPE jvm_threads_live_threads gauge\njvm_threads_live_threads 41\n")
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	p.Scrape(context.Background(), newRecorder().Registry)
	if st := p.Status(); !st.OK || !strings.HasSuffix(st.Status, "0 breakers (no resilience4j, Envoy or mapped breaker metrics found)") {
		t.Errorf("status = %+v", st)
	}
}

func TestPrometheusVanishedBreakerIsStale(t *testing.T) {
	srv := newExposition(t, r4jExposition(map[string]string{"a": "closed", "b": "open"}))
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	reg := newRecorder()
	p.Scrape(context.Background(), reg.Registry)
	srv.set(http.StatusOK, r4jExposition(map[string]string{"a": "closed"}))
	p.Scrape(context.Background(), reg.Registry)
	if diff := cmp.Diff([]string{"a=closed", "b=open stale"}, reg.states()); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
}

func TestPrometheusCap(t *testing.T) {
	states := map[string]string{}
	for i := range 10 {
		states[fmt.Sprintf("b%02d", i)] = "closed"
	}
	srv := newExposition(t, r4jExposition(states))
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 3})
	reg := newRecorder()
	p.Scrape(context.Background(), reg.Registry)
	if diff := cmp.Diff([]string{"b00=closed", "b01=closed", "b02=closed"}, reg.states()); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
	if st := p.Status().Status; !strings.Contains(st, "3 breakers; 7 more over the limit of 3 not shown") {
		t.Errorf("status = %q, want the 7 breakers over the cap counted", st)
	}
	// A new breaker that sorts first does not push out one already shown.
	states["a-new"] = "open"
	srv.set(http.StatusOK, r4jExposition(states))
	p.Scrape(context.Background(), reg.Registry)
	if diff := cmp.Diff([]string{"b00=closed", "b01=closed", "b02=closed"}, reg.states()); diff != "" {
		t.Errorf("breakers after a new one appeared (-want +got):\n%s", diff)
	}
}

func TestPrometheusSkippedSeriesInStatus(t *testing.T) {
	srv := newExposition(t, `resilience4j_circuitbreaker_state{name="a"} 1
resilience4j_circuitbreaker_state{name="b"} 9
`)
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	reg := newRecorder()
	p.Scrape(context.Background(), reg.Registry)
	if diff := cmp.Diff([]string{"a=open"}, reg.states()); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
	if st := p.Status().Status; !strings.Contains(st, "1 breakers; 2 series skipped (") {
		t.Errorf("status = %q, want the skipped series counted", st)
	}
}

func TestPrometheusOpenMetrics(t *testing.T) {
	srv := newExposition(t, "")
	srv.contentType = ctOpenMetrics
	srv.set(http.StatusOK, "# TYPE resilience4j_circuitbreaker_state gauge\n"+
		`resilience4j_circuitbreaker_state{name="a",state="open"} 1.0`+"\n# EOF\n")
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	reg := newRecorder()
	p.Scrape(context.Background(), reg.Registry)
	if diff := cmp.Diff([]string{"a=open"}, reg.states()); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
}

// TestPrometheusRun runs the source on its own schedule and changes the exposition
// under it: the change must show up within a few intervals.
func TestPrometheusRun(t *testing.T) {
	srv := newExposition(t, r4jExposition(map[string]string{"payments": "closed"}))
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, Interval: 100 * time.Millisecond, MaxBreakers: 500})
	reg := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, reg.Registry); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "payments closed", func() bool { b, ok := reg.Get("payments"); return ok && b.State == "closed" })
	srv.set(http.StatusOK, r4jExposition(map[string]string{"payments": "open"}))
	waitFor(t, "payments open", func() bool { b, _ := reg.Get("payments"); return b.State == "open" })
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/agent.yaml"
	yaml := `prometheus-url: http://127.0.0.1:8080/actuator/prometheus
hystrix-url: http://127.0.0.1:8080/hystrix.stream
prometheus-mappings:
  - metric: payments_circuit_state
    name-label: target
    states: {"0": closed, "1": half_open, "2": open}
`
	if err := writeFile(file, yaml); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadAgent([]string{"--config", file, "--sample-interval", "2s"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range FromConfig(cfg, nil) {
		names = append(names, s.Name())
	}
	if diff := cmp.Diff([]string{NamePrometheus, NameHystrix}, names); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	p := FromConfig(cfg, nil)[0].(*Prometheus)
	if p.opts.Interval != 2*time.Second || len(p.opts.Mappings) != 1 || p.opts.MaxBreakers != 500 {
		t.Errorf("prometheus options = %+v, want the sample interval, one mapping, cap 500", p.opts)
	}

	_, err = config.LoadAgent([]string{"--config", file, "--prometheus-interval", "10ms"}, func(k string) string {
		return map[string]string{"FAULTLINE_PROMETHEUS_URL": "not a url"}[k]
	})
	for _, want := range []string{"prometheus-interval: 10ms is outside", `prometheus-url: "not a url"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to name %q", err, want)
		}
	}
	if err := writeFile(file, "prometheus-mappings:\n  - {metric: m, name-label: target, states: {open: open, \"1\": sideways}}\n"); err != nil {
		t.Fatal(err)
	}
	_, err = config.LoadAgent([]string{"--config", file}, func(string) string { return "" })
	for _, want := range []string{`prometheus-mappings[0].states[open]: "open" is not a sample value`, `prometheus-mappings[0].states[1]: "sideways" is not one of`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to name %q", err, want)
		}
	}
}
