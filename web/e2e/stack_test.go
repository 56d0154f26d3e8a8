package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// agentProc is a real faultline-agent process.
type agentProc struct {
	*testbin.Process
	api, ingest string // base URLs
}

// startAgent runs an agent with a pod identity given through the Downward API variables.
func startAgent(t testing.TB, namespace, workload, pod string, args ...string) *agentProc {
	t.Helper()
	bin := testbin.Build(t, "faultline-agent")
	a := &agentProc{api: "http://" + testbin.FreeAddr(t, "127.0.0.1"), ingest: "http://" + testbin.FreeAddr(t, "127.0.0.1")}
	env := []string{"POD_NAME=" + pod, "POD_NAMESPACE=" + namespace, "NODE_NAME=node-1"}
	args = append([]string{"--listen", strings.TrimPrefix(a.api, "http://"), "--ingest-listen", strings.TrimPrefix(a.ingest, "http://"),
		"--workload", workload, "--mode", "host", "--sample-interval", "500ms"}, args...)
	a.Process = testbin.Start(t, bin, env, args...)
	testbin.WaitHTTP(t, a.api+"/readyz", http.StatusOK, 20*time.Second)
	return a
}

// put reports a breaker's state to the agent's ingest API, as an application does.
func (a *agentProc) put(t testing.TB, name, body string) {
	t.Helper()
	testbin.PutJSON(t, a.ingest+"/v1/breakers/"+name, body)
}

// aggregator is the real faultline-aggregator process on fixed loopback addresses, so
// that a restart comes back where the browser expects it.
type aggregator struct {
	t          testing.TB
	bin        string
	api, probe string
	args       []string
	proc       *testbin.Process
}

func newAggregator(t testing.TB, args ...string) *aggregator {
	t.Helper()
	a := &aggregator{t: t, bin: testbin.Build(t, "faultline-aggregator"),
		api: testbin.FreeAddr(t, "127.0.0.1"), probe: testbin.FreeAddr(t, "127.0.0.1"), args: args}
	a.start()
	return a
}

func (a *aggregator) URL() string { return "http://" + a.api }

func (a *aggregator) start() {
	a.t.Helper()
	args := append([]string{"--listen=" + a.api, "--probe-listen=" + a.probe, "--mode=static"}, a.args...)
	a.proc = testbin.Start(a.t, a.bin, nil, args...)
	testbin.WaitHTTP(a.t, "http://"+a.probe+"/readyz", http.StatusOK, 30*time.Second)
}

// stop ends the aggregator the way an orchestrator does (SIGTERM) and waits for it.
func (a *aggregator) stop() {
	a.t.Helper()
	if err := a.proc.Stop(10 * time.Second); err != nil && !strings.Contains(err.Error(), "signal") {
		a.t.Logf("aggregator stop: %v", err)
	}
}

// streamWatch reads the aggregator's stream in the background and keeps its
// circuit-breaker events, for latency checks against what the browser shows.
type streamWatch struct {
	mu       sync.Mutex
	breakers []view.BreakerEvent
	cancel   context.CancelFunc
}

func watchStream(t testing.TB, base string) *streamWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/performance/stream?events=circuit-breaker", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &streamWatch{cancel: cancel}
	go func() {
		defer resp.Body.Close()
		for ev, err := range wire.ReadEvents(bufio.NewReader(resp.Body), 0) {
			if err != nil {
				return
			}
			if ev.Name != wire.EventCircuitBreaker {
				continue
			}
			var be view.BreakerEvent
			if json.Unmarshal(ev.Data, &be) == nil {
				w.mu.Lock()
				w.breakers = append(w.breakers, be)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(cancel)
	return w
}

// demoProc is the real faultline-demo: a frontend calling checkout, which calls
// payments, inventory and shipping through sony/gobreaker breakers reported to its agent.
type demoProc struct {
	*testbin.Process
	url string
}

// startDemo runs the demo reporting to agent a, with steady dependencies unless args
// say otherwise (the default shipping bursts would open a breaker at random).
func startDemo(t testing.TB, a *agentProc, args ...string) *demoProc {
	t.Helper()
	bin := testbin.Build(t, "faultline-demo")
	d := &demoProc{url: "http://" + testbin.FreeAddr(t, "127.0.0.1")}
	args = append([]string{"--listen", strings.TrimPrefix(d.url, "http://"), "--ingest-url", a.ingest, "--load-rps", "20",
		"--shipping", "steady,errors=0.5%,latency=15ms"}, args...)
	d.Process = testbin.Start(t, bin, nil, args...)
	testbin.WaitHTTP(t, d.url+"/healthz", http.StatusOK, 20*time.Second)
	return d
}

// setPattern changes how a dependency of the demo fails, through its control API.
func (d *demoProc) setPattern(t testing.TB, dependency, pattern string) {
	t.Helper()
	testbin.PutJSON(t, d.url+"/control/dependencies/"+dependency, pattern)
}
