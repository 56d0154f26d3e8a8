package agent

import (
	"testing"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/httpx/httpxtest"
)

// Every route of both listeners, as the mux lists them, refuses what a browser could be
// made to send: a foreign Host (DNS rebinding), and for writes a foreign Origin, a caller
// outside the pod without the token, a body not declared JSON or over the limit. The
// aggregator and kubelet reach the agent by its pod IP, which is answered.
func TestGuardOnEveryRoute(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		a := newTestAgent(t, func(c *config.Agent) { c.Token, c.AllowedHosts = token, nil })
		body, _ := a.guard.Limits()
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "main", Handler: a.mainHandler(), Routes: a.mainRoutes().Routes(),
			Host: "10.244.1.7:9800", Token: token, MaxBodyBytes: body})
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "ingest", Handler: a.ingestHandler(), Routes: a.ingestRoutes().Routes(),
			Host: "127.0.0.1:9801", Token: token, MaxBodyBytes: body})
	}
}
