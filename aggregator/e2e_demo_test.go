package aggregator_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// The demo's payments dependency goes down; its real gobreaker breaker opens because
// calls really fail, the demo reports it to its agent, and the aggregator's stream carries
// the transition.
func TestEndToEndDemoBreakerOpens(t *testing.T) {
	requireAgentBinary(t)
	if _, err := os.Stat(filepath.Join(testbin.RepoRoot(), "cmd", "faultline-demo", "main.go")); err != nil {
		testbin.Missing(t, "cmd/faultline-demo is not in this tree")
	}
	agent := startAgent(t, "127.0.0.11", "demo")
	demoAddr := testbin.FreeAddr(t, "127.0.0.1") // the demo's load generator calls its frontend on 127.0.0.1
	testbin.Start(t, testbin.Build(t, "faultline-demo"), nil, "--listen="+demoAddr, "--ingest-url=http://"+agent.ingest, "--load-rps=50")
	testbin.WaitHTTP(t, "http://"+demoAddr+"/healthz", http.StatusOK, 30*time.Second)
	agg := startAggregator(t, "--agents="+agent.URL())
	waitConnected(t, agg, 1)
	c := connect(t, "http://"+agg.api+"/api/v1/performance/stream?events=circuit-breaker", "")

	req, _ := http.NewRequest(http.MethodPut, "http://"+demoAddr+"/control/dependencies/payments", strings.NewReader(`{"pattern":"outage"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("demo control API: %d", resp.StatusCode)
	}
	c.next(t, 30*time.Second, "payments breaker opening", isBreaker("payments", wire.StateOpen))
}
