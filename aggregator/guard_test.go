package aggregator

import (
	"testing"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/aggregator/store"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/httpx/httpxtest"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/web"
)

// Every route of the API and probe listeners, as their muxes list them, refuses what a
// browser could be made to send (a foreign Host; for the cleanup, a foreign Origin, a
// caller outside loopback without the token, a body not declared JSON or over the
// limit). Kubelet probes and Prometheus reach the probe port by the pod IP: answered.
func TestGuardOnEveryRoute(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		cfg := config.DefaultAggregator()
		cfg.Token = token
		guard := cfg.Guard("faultline-aggregator", token, nil)
		hub := stream.New(stream.Options{})
		t.Cleanup(hub.Close)
		hist := history.New(history.Options{})
		engine := alert.NewEngine(alert.DefaultRules())
		st := store.New(store.Options{Mode: "static", Hub: hub, History: hist, Alerts: engine})
		disc := &discovery.Static{}
		p := pool.New(st, pool.Options{Goroutines: true})
		apiFront := api.Handler(api.Config{State: st, Hub: hub, History: hist, Alerts: engine, Guard: guard, Web: web.Handler(),
			Cleanup: &api.Cleanup{Agents: func() map[string]string { return nil }}}).(*httpx.Front)
		probeFront := probeHandler(probeDeps{disc: disc, st: st, hub: hub, hist: hist, pool: p, guard: guard, health: health.New(nil)}, true).(*httpx.Front)
		body, _ := guard.Limits()
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "api", Handler: apiFront, Routes: apiFront.Routes(), Host: "localhost:3001", Token: token, MaxBodyBytes: body})
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "probe", Handler: probeFront, Routes: probeFront.Routes(), Host: "10.244.0.12:8081", Token: token, MaxBodyBytes: body})
	}
}
