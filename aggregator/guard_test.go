package aggregator

import (
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/broadcast"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/aggregator/reader"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/suggest"
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
		record := rewind.New(hist.Retention(), time.Now())
		fl := fleet.New(fleet.Options{Hub: hub, Rewind: record})
		opt := optimize.New(optimize.Options{Hub: hub, SampleInterval: fl.SampleInterval, HistoryRetention: hist.Retention()})
		bc := broadcast.New(broadcast.Options{Mode: "static", Fleet: fl, Hub: hub, History: hist, Alerts: engine, Optimizer: opt, Rewind: record})
		keeper := suggest.NewKeeper(0, fl.Agents, record.Flips, hist)
		disc := &discovery.Static{}
		rd, err := reader.New(reader.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rd.Close)
		p := pool.New(fl, rd, pool.Options{})
		apiFront := api.Handler(api.Config{State: state{bc, keeper, opt}, Hub: hub, History: hist, Alerts: engine, Guard: guard, Web: web.Handler(),
			Cleanup: &api.Cleanup{Agents: func() map[string]string { return nil }}}).(*httpx.Front)
		probeFront := probeHandler(probeDeps{disc: disc, fleet: fl, bc: bc, opt: opt, hub: hub, hist: hist, pool: p, guard: guard, health: health.New(nil)}, true).(*httpx.Front)
		body, _ := guard.Limits()
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "api", Handler: apiFront, Routes: apiFront.Routes(), Host: "localhost:3001", Token: token, MaxBodyBytes: body})
		httpxtest.EveryRoute(t, httpxtest.Listener{Name: "probe", Handler: probeFront, Routes: probeFront.Routes(), Host: "10.244.0.12:8081", Token: token, MaxBodyBytes: body})
	}
}
