package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sony/gobreaker/v2"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/agent/ingest"
	"github.com/faultline-dev/faultline/internal/names/namestest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// fakeAgent is an ingest API on loopback that decodes exactly as the agent does
// (agent/ingest) and stores into a real breaker registry.
type fakeAgent struct {
	*httptest.Server
	reg *breaker.Registry

	mu          sync.Mutex
	transitions []string
	throughput  []ingest.Throughput
	badRequests []string
	hold        chan struct{} // when set, requests wait on it
}

func newFakeAgent(t *testing.T) *fakeAgent { return newFakeAgentAt(t, "127.0.0.1:0") }

// newFakeAgentAt starts the fake agent on addr, so that a test can bring an agent back
// where a reporter expects it.
func newFakeAgentAt(t *testing.T, addr string) *fakeAgent {
	a := &fakeAgent{}
	a.reg = breaker.New("fake", func(tr wire.Transition) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.transitions = append(a.transitions, fmt.Sprintf("%s:%s>%s", tr.Breaker.Name, tr.From, tr.To))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/breakers", func(w http.ResponseWriter, r *http.Request) {
		a.wait()
		body, _ := io.ReadAll(r.Body)
		bs, err := ingest.DecodeBreakers(body)
		if err != nil {
			a.bad(w, err)
			return
		}
		for _, b := range bs {
			if _, err := a.reg.Upsert(b); err != nil {
				a.bad(w, err)
				return
			}
		}
		fmt.Fprintf(w, `{"breakers":%d}`, len(bs))
	})
	mux.HandleFunc("POST /v1/throughput", func(w http.ResponseWriter, r *http.Request) {
		a.wait()
		body, _ := io.ReadAll(r.Body)
		tp, err := ingest.DecodeThroughput(body)
		if err != nil {
			a.bad(w, err)
			return
		}
		a.mu.Lock()
		a.throughput = append(a.throughput, tp)
		a.mu.Unlock()
		fmt.Fprint(w, `{"throughput":true}`)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	a.Server = httptest.NewUnstartedServer(mux)
	a.Server.Listener.Close()
	a.Server.Listener = ln
	a.Server.Start()
	t.Cleanup(func() {
		a.release()
		a.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, b := range a.badRequests {
			t.Errorf("the agent refused a report: %s", b)
		}
	})
	return a
}

func (a *fakeAgent) bad(w http.ResponseWriter, err error) {
	a.mu.Lock()
	a.badRequests = append(a.badRequests, err.Error())
	a.mu.Unlock()
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (a *fakeAgent) wait() {
	a.mu.Lock()
	hold := a.hold
	a.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

func (a *fakeAgent) block() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hold = make(chan struct{})
}

func (a *fakeAgent) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold != nil {
		close(a.hold)
		a.hold = nil
	}
}

func (a *fakeAgent) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.transitions...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errBoom = errors.New("boom")

func fail() (string, error) { return "", errBoom }
func ok() (string, error)   { return "ok", nil }

// TestBreakerLifecycle trips a real gobreaker breaker, lets its open period pass with no
// traffic and closes it again: every transition must reach the agent, in order, with the
// calls counted by kind.
func TestBreakerLifecycle(t *testing.T) {
	agent := newFakeAgent(t)
	r := New(Options{AgentURL: agent.URL, FlushInterval: 20 * time.Millisecond})
	defer r.Close()
	cb := NewBreaker[string](r, gobreaker.Settings{
		Name:        "payments",
		Timeout:     300 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
	})
	cb.Execute(ok)
	for range 3 {
		cb.Execute(fail)
	}
	if _, err := cb.Execute(ok); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("call on an open breaker: %v, want ErrOpenState", err)
	}
	cb.Execute(func() (string, error) { return "", fmt.Errorf("call: %w", context.DeadlineExceeded) }) // rejected too
	waitFor(t, "payments open at the agent", func() bool { b, _ := agent.reg.Get("payments"); return b.State == "open" })
	// No call is made: the reporter notices the open period ending by itself.
	waitFor(t, "payments half-open at the agent", func() bool { b, _ := agent.reg.Get("payments"); return b.State == "half_open" })
	cb.Execute(ok)
	waitFor(t, "payments closed at the agent", func() bool { b, _ := agent.reg.Get("payments"); return b.State == "closed" })

	want := []string{"payments:>closed", "payments:closed>open", "payments:open>half_open", "payments:half_open>closed"}
	if diff := cmp.Diff(want, agent.log()); diff != "" {
		t.Errorf("transitions at the agent (-want +got):\n%s", diff)
	}
	r.Flush(context.Background())
	b, _ := agent.reg.Get("payments")
	if diff := cmp.Diff(wire.Calls{Succeeded: 2, Failed: 3, Rejected: 2}, b.Calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if b.Source != "gobreaker" || b.Thresholds == nil || *b.Thresholds.OpenMs != 300 {
		t.Errorf("breaker = %+v, want source gobreaker and open_ms 300", b)
	}
	if st := r.Stats(); st.Dropped != 0 || st.Failures != 0 || st.Sent == 0 {
		t.Errorf("stats = %+v, want reports sent and none dropped", st)
	}
}

func TestCallKinds(t *testing.T) {
	agent := newFakeAgent(t)
	r := New(Options{AgentURL: agent.URL, FlushInterval: time.Hour})
	defer r.Close()
	cb := NewBreaker[string](r, gobreaker.Settings{
		Name:         "db",
		ReadyToTrip:  func(gobreaker.Counts) bool { return false },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, errNotFound) },
	})
	cb.Execute(ok)
	cb.Execute(func() (string, error) { return "", errNotFound }) // a success for this breaker
	cb.Execute(fail)
	cb.Execute(func() (string, error) { return "", context.DeadlineExceeded })
	cb.Execute(func() (string, error) { return "", &net408{} }) // a network timeout
	cb.Execute(func() (string, error) { return "", context.Canceled })
	r.Flush(context.Background())
	b, _ := agent.reg.Get("db")
	if diff := cmp.Diff(wire.Calls{Succeeded: 2, Failed: 1, TimedOut: 2}, b.Calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if b.FailureRate == nil || math.Abs(*b.FailureRate-60) > 1e-9 {
		t.Errorf("failure rate = %v, want 60 (3 of gobreaker's 5 counted calls failed)", b.FailureRate)
	}
}

var errNotFound = errors.New("not found")

type net408 struct{}

func (*net408) Error() string   { return "i/o timeout" }
func (*net408) Timeout() bool   { return true }
func (*net408) Temporary() bool { return true }

// TestAgentAway runs calls and state changes while the agent hangs and then is gone:
// the caller is never held up, reports are dropped and counted, and once the agent is
// back it receives the breakers' current state.
func TestAgentAway(t *testing.T) {
	agent := newFakeAgent(t)
	agent.block()
	r := New(Options{AgentURL: agent.URL, FlushInterval: 10 * time.Millisecond, QueueSize: 4,
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
	defer r.Close()
	cb := NewBreaker[string](r, gobreaker.Settings{
		Name:        "flaky",
		Timeout:     time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
	})
	// Each round trips the breaker and lets it half-open: 2 state changes per round,
	// far more than the queue of 4 holds while the agent does not answer. If reporting
	// blocked the caller, this loop would never end.
	for range 200 {
		cb.Execute(fail)
		time.Sleep(2 * time.Millisecond)
		cb.State()
	}
	waitFor(t, "drops counted", func() bool { return r.Stats().Dropped > 0 })
	agent.release()
	agent.Close() // now refused
	waitFor(t, "a failure recorded", func() bool {
		return strings.Contains(r.Stats().LastError, "connection refused")
	})
	st := r.Stats()
	if st.Failures == 0 || st.Dropped < 100 {
		t.Errorf("stats = %+v, want failures and at least 100 dropped state changes", st)
	}

	back := newFakeAgentAt(t, agent.Listener.Addr().String())
	waitFor(t, "state resent to the new agent", func() bool { _, ok := back.reg.Get("flaky"); return ok })
	want := string(stateName(cb.State()))
	waitFor(t, "current state at the new agent", func() bool { b, _ := back.reg.Get("flaky"); return string(b.State) == want })
}

func TestThroughput(t *testing.T) {
	agent := newFakeAgent(t)
	r := New(Options{AgentURL: agent.URL, FlushInterval: time.Hour})
	defer r.Close()
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, p := range []string{"/", "/", "/fail", "/"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	r.Flush(context.Background())
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if len(agent.throughput) != 1 {
		t.Fatalf("throughput reports = %d, want 1", len(agent.throughput))
	}
	tp := agent.throughput[0]
	if *tp.Requests != 4 || *tp.Errors != 1 || tp.Latency == nil {
		t.Errorf("throughput = requests %d errors %d latency %v, want 4, 1 and percentiles", *tp.Requests, *tp.Errors, tp.Latency)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	hist := newHistogram()
	for i := 1; i <= 1000; i++ {
		hist.add(time.Duration(i) * time.Millisecond)
	}
	h := hist.snapshot()
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := q * 1000
		if got := h.quantile(q); math.Abs(got-want)/want > 0.2 {
			t.Errorf("p%v = %.1f ms, want %v ms within the 20 %% bucket width", q*100, got, want)
		}
	}
	extremes := newHistogram()
	extremes.add(0)
	extremes.add(10 * time.Minute) // beyond the last bucket
	one := extremes.snapshot()
	if one.quantile(0.5) > 0.05 || one.quantile(0.99) < 1e4 {
		t.Errorf("extremes: p50 %v, p99 %v", one.quantile(0.5), one.quantile(0.99))
	}
}

// TestReportsDecodeAsTheAgentDoes checks the client's JSON against the agent's strict
// ingest decoding: every field known, every value as meant.
func TestReportsDecodeAsTheAgentDoes(t *testing.T) {
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	open := 30000.0
	rate := 62.5
	rep := breakerReport{
		V: 1, Name: "payments", State: "open", FailureRate: &rate,
		Calls: calls{Succeeded: 30, Failed: 50, Rejected: 12, TimedOut: 3},
		Since: since.Format(timeFormat), Source: "gobreaker", Thresholds: &thresholds{OpenMs: &open},
	}
	body, _ := json.Marshal([]breakerReport{rep, {V: 1, Name: "db", State: "half_open", Since: since.Format(timeFormat), Source: "gobreaker"}})
	got, err := ingest.DecodeBreakers(body)
	if err != nil {
		t.Fatalf("agent refuses the client's batch: %v\n%s", err, body)
	}
	want := []wire.Breaker{
		{
			V: 1, Name: "payments", State: wire.StateOpen, FailureRate: &rate,
			Calls: wire.Calls{Succeeded: 30, Failed: 50, Rejected: 12, TimedOut: 3},
			Since: wire.NewTime(since), Source: "gobreaker", Thresholds: &wire.Thresholds{OpenMs: &open},
		},
		{V: 1, Name: "db", State: wire.StateHalfOpen, Since: wire.NewTime(since), Source: "gobreaker"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded by the agent (-want +got):\n%s", diff)
	}
	for _, s := range []gobreaker.State{gobreaker.StateClosed, gobreaker.StateHalfOpen, gobreaker.StateOpen} {
		if !wire.BreakerState(stateName(s)).Valid() {
			t.Errorf("state %v maps to %q, not a wire state", s, stateName(s))
		}
	}

	tp := throughputReport{V: 1, Requests: 100, Errors: 4, Latency: &latency{P50Ms: 3, P90Ms: 9, P99Ms: 40}}
	body, _ = json.Marshal(tp)
	gotTP, err := ingest.DecodeThroughput(body)
	if err != nil {
		t.Fatalf("agent refuses the client's throughput: %v\n%s", err, body)
	}
	if *gotTP.Requests != 100 || *gotTP.Errors != 4 || *gotTP.Latency != (wire.Latency{P50Ms: 3, P90Ms: 9, P99Ms: 40}) {
		t.Errorf("throughput decoded as %+v", gotTP)
	}
}

// TestImports keeps the package importable by any service: the standard library and
// gobreaker only.
func TestImports(t *testing.T) {
	const names = "github.com/faultline-dev/faultline/internal/names" // the name check, standard library only
	for dir, allowed := range map[string][]string{".": {"github.com/sony/gobreaker/v2", names}, "../../internal/names": nil} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(path, "/")
				if strings.Contains(first, ".") && !slices.Contains(allowed, path) {
					t.Errorf("%s imports %s: only the standard library and %v are allowed", f, path, allowed)
				}
			}
		}
	}
}

func TestBreakerNames(t *testing.T) {
	agent := newFakeAgent(t)
	r := New(Options{AgentURL: agent.URL, FlushInterval: time.Hour})
	defer r.Close()
	for _, name := range namestest.Hostile() {
		NewBreaker[string](r, gobreaker.Settings{Name: name})
	}
	r.Flush(context.Background())
	for _, name := range namestest.Hostile() {
		if _, ok := agent.reg.Get(name); !ok {
			t.Errorf("no breaker %q at the agent; it holds %d", name, agent.reg.Len())
		}
	}
	for _, bad := range []string{"", "a\nb", strings.Repeat("x", 201), "..", namestest.Hostile()[0] /* already reported */} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewBreaker(%q) did not panic", bad)
				}
			}()
			NewBreaker[string](r, gobreaker.Settings{Name: bad})
		}()
	}
}
