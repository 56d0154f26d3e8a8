package aggregator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// realAgent is the faultline-agent binary on loopback.
type realAgent struct {
	t              *testing.T
	listen, ingest string
	proc           *testbin.Process
	workload       string
}

func startAgent(t *testing.T, ip, workload string) *realAgent {
	a := &realAgent{t: t, listen: testbin.FreeAddr(t, ip), ingest: testbin.FreeAddr(t, ip), workload: workload}
	a.start()
	return a
}

func (a *realAgent) URL() string { return "http://" + a.listen }

func (a *realAgent) start() {
	a.t.Helper()
	bin := testbin.Build(a.t, "faultline-agent")
	a.proc = testbin.Start(a.t, bin, nil, "--listen="+a.listen, "--ingest-listen="+a.ingest, "--mode=host",
		"--workload="+a.workload, "--sample-interval=200ms")
	testbin.WaitHTTP(a.t, a.URL()+"/readyz", http.StatusOK, 30*time.Second)
}

// push reports a breaker to the agent's ingest API, as an application does.
func (a *realAgent) push(name string, state wire.BreakerState) {
	a.t.Helper()
	body := fmt.Sprintf(`{"state":%q,"failure_rate":55}`, state)
	req, _ := http.NewRequest(http.MethodPut, "http://"+a.ingest+"/v1/breakers/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		a.t.Fatalf("PUT breaker %s: %d", name, resp.StatusCode)
	}
}

func requireAgentBinary(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(testbin.RepoRoot(), "cmd", "faultline-agent", "main.go")); err != nil {
		testbin.Missing(t, "cmd/faultline-agent is not in this tree")
	}
}

// Real agents and the real aggregator on loopback: a breaker pushed to an agent arrives
// as a circuit-breaker event; a killed agent shows as unavailable with an alert within
// 2 s; restarted, it is connected again and no transition is lost; a cluster-wide
// memory cleanup reaches every agent.
func TestEndToEndRealAgents(t *testing.T) {
	requireAgentBinary(t)
	agents := []*realAgent{startAgent(t, "127.0.0.7", "cart"), startAgent(t, "127.0.0.8", "cart"), startAgent(t, "127.0.0.9", "pay")}
	var urls []string
	for _, a := range agents {
		urls = append(urls, a.URL())
	}
	agg := startAggregator(t, "--agents="+strings.Join(urls, ","))
	c := connect(t, "http://"+agg.api+"/api/v1/performance/stream", "")
	waitConnected(t, agg, 3)

	pushed := time.Now()
	agents[1].push("payments", wire.StateOpen)
	ev := c.next(t, 2*time.Second, "circuit-breaker event for the pushed breaker", isBreaker("payments", wire.StateOpen))
	t.Logf("push -> aggregator client: %v", time.Since(pushed))
	var be view.BreakerEvent
	if err := json.Unmarshal(ev.Data, &be); err != nil || be.Workload != "cart" || be.Tile.Open != 1 {
		t.Errorf("event = %+v (%v); want workload cart with the tile open on 1 pod", be, err)
	}

	victim := agents[2]
	killed := time.Now()
	victim.proc.Kill() // SIGKILL
	c.next(t, 2*time.Second, "agent unavailable event", isAgentState(victim.URL(), view.AgentUnavailable))
	c.next(t, 2*time.Second, "agent-unavailable alert", func(ev wire.Event) bool {
		var a wire.Alert
		return ev.Name == wire.EventAlert && json.Unmarshal(ev.Data, &a) == nil && a.Rule == "agent-unavailable" && a.Target.Agent == victim.URL()
	})
	if took := time.Since(killed); took > 2*time.Second {
		t.Errorf("unavailable event and alert after %v, want within 2 s", took)
	}
	victim.start()
	victim.push("ledger", wire.StateOpen) // likely before the aggregator reconnects
	c.next(t, 35*time.Second, "agent connected again", isAgentState(victim.URL(), view.AgentConnected))
	victim.push("ledger", wire.StateHalfOpen)
	victim.push("ledger", wire.StateClosed)
	for _, to := range []wire.BreakerState{wire.StateOpen, wire.StateHalfOpen, wire.StateClosed} {
		c.next(t, 5*time.Second, "ledger "+string(to), isBreaker("ledger", to))
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+agg.api+"/api/v1/performance/cleanup-memory?scope=cluster", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res api.CleanupResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("cleanup: %d %v", resp.StatusCode, err)
	}
	if res.AgentsOK != 3 || res.AgentsFail != 0 || len(res.Agents) != 3 {
		t.Errorf("cluster cleanup = %+v; want each of the 3 agents reported ok", res)
	}
}

// waitConnected waits until n agents are connected, as GET /api/v1/agents shows.
func waitConnected(t *testing.T, agg *aggregatorProc, n int) {
	t.Helper()
	testbin.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get("http://" + agg.api + "/api/v1/agents?state=connected")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ar api.AgentsResponse
		if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
			return err
		}
		if len(ar.Agents) != n {
			return fmt.Errorf("%d agents connected, want %d", len(ar.Agents), n)
		}
		return nil
	})
}
