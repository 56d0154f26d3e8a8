// Package aggregator wires faultline's aggregator together, as hubble-relay does: a
// discoverer hands targets to the pool, the pool keeps one stream per agent and reports
// into the fleet, which keeps every agent merged into its workload; the broadcaster
// assembles the view from the fleet and publishes it into the stream hub, and the API
// serves the views. Run is what cmd/faultline-aggregator calls.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/broadcast"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/discovery/kube"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/local"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/aggregator/reader"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
	"github.com/faultline-dev/faultline/web"
)

// state is what the API reads: the views the broadcaster builds, the suggestions and
// the operating parameters.
type state struct {
	*broadcast.Broadcaster
	*suggest.Keeper
	*optimize.Optimizer
}

var _ api.State = state{}

// noteReload records a reload of the config file's agents as a change of the operating
// parameters.
func noteReload(opt *optimize.Optimizer, file string, before, after int, err error) {
	if err != nil {
		opt.NoteChange("agents", fmt.Sprint(before), fmt.Sprint(before), "config file reload failed, previous agents kept: "+err.Error())
		return
	}
	opt.NoteChange("agents", fmt.Sprint(before), fmt.Sprint(after), "config file "+file+" changed")
}

// Options are what Run takes besides the configuration. Zero values are filled in for
// single-node mode.
type Options struct {
	// Discoverer finds agents. nil: static discovery from cfg (--agents and the config
	// file's agents key); in kubernetes mode the Kubernetes discoverer.
	Discoverer discovery.Discoverer
	// IsLeader says whether this replica delivers notifications (Alertmanager). nil:
	// always (one replica, static mode).
	IsLeader func() bool
	Logger   hclog.Logger
	// Listening, if set, is called with the bound addresses once both listeners are up
	// (tests use ":0").
	Listening func(api, probe net.Addr)
	// Web serves the dashboard; nil: web.Handler().
	Web http.Handler

	beforeBroadcast func() // tests stall the broadcast loop with it
}

// Run serves until ctx is done, then shuts down: streams end, connections to agents
// close, and Run returns nil. It returns an error if it cannot start.
func Run(ctx context.Context, cfg config.Aggregator, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = cfg.Logger("faultline-aggregator")
	}
	if opts.Web == nil {
		opts.Web = web.Handler()
	}
	rules, err := alert.Rules(cfg.AlertRules)
	if err != nil {
		return err
	}

	apiLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer apiLn.Close()
	probeLn, err := net.Listen("tcp", cfg.ProbeListen)
	if err != nil {
		return fmt.Errorf("probe-listen %s: %w", cfg.ProbeListen, err)
	}
	defer probeLn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	hub := stream.New(stream.Options{SubscriberBuffer: cfg.SubscriberBuffer})
	hist := history.New(history.Options{Retention: cfg.HistoryRetention})
	record := rewind.New(hist.Retention(), time.Now())
	engine := alert.NewEngine(rules)
	monitor := health.New(nil)
	fl := fleet.New(fleet.Options{Hub: hub, Rewind: record, Logger: log.Named("fleet"), Health: monitor})
	opt := optimize.New(optimize.Options{Hub: hub, SampleInterval: fl.SampleInterval, BroadcastInterval: cfg.BroadcastInterval,
		BroadcastBudget: cfg.BroadcastBudget, HistoryRetention: hist.Retention(), Logger: log.Named("optimize")})
	disc := opts.Discoverer
	if disc == nil {
		switch cfg.Mode {
		case config.ModeKubernetes:
			// Every replica watches and serves everything; a Lease picks the one that
			// delivers alerts, so it is only campaigned for when there is delivery.
			d, err := kube.New(kube.Options{Kubeconfig: cfg.Kubeconfig, Selector: cfg.AgentSelector,
				Namespaces: cfg.Namespaces, LeaseName: cfg.LeaseName, LeaderElection: cfg.AlertmanagerURL != "", Logger: log.Named("discovery")})
			if err != nil {
				return err
			}
			disc = d
			if opts.IsLeader == nil {
				opts.IsLeader = d.IsLeader
			}
		default:
			st := &discovery.Static{Fixed: cfg.Agents, Logger: log.Named("discovery")}
			if !cfg.AgentsPinned && cfg.ConfigFile != "" {
				st.Fixed, st.File, st.Read = nil, cfg.ConfigFile, config.AgentsFromFile
				st.OnReload = func(before, after int, err error) { noteReload(opt, cfg.ConfigFile, before, after, err) }
			}
			disc = st
		}
	}
	if opts.IsLeader == nil {
		opts.IsLeader = func() bool { return true }
	}
	var notifier *alert.Notifier
	var deliver func(...wire.Alert)
	if cfg.AlertmanagerURL != "" {
		notifier = alert.NewNotifier(cfg.AlertmanagerURL, opts.IsLeader, log.Named("alertmanager"))
		notifier.GeneratorURL = "http://" + advertised(apiLn.Addr()) + "/"
		deliver = notifier.Enqueue
	}
	var replicas func() map[discovery.Workload]int
	if r, ok := disc.(discovery.Replicas); ok {
		replicas = r.DesiredReplicas
	}
	bc := broadcast.New(broadcast.Options{
		Mode: cfg.Mode, Fleet: fl, Hub: hub, History: hist, Alerts: engine, Deliver: deliver, Discovery: disc.Status, Replicas: replicas,
		Rewind: record, Optimizer: opt, Logger: log.Named("broadcast"), MaxWorkloads: cfg.MetricsMaxWorkloads, MaxTiles: cfg.MetricsMaxTiles,
		Health: monitor, BeforeBroadcast: opts.beforeBroadcast,
	})
	keeper := suggest.NewKeeper(0, fl.Agents, record.Flips, hist)
	rd, err := reader.New(reader.Options{MaxEventBytes: cfg.AgentMaxEventBytes, MaxGarbageBytes: max(cfg.AgentMaxGarbage, 1),
		Logger: log.Named("reader"), Health: monitor})
	if err != nil {
		return err
	}
	p := pool.New(fl, rd, pool.Options{Logger: log.Named("pool")})

	var delivery func() alert.Delivery
	if notifier != nil {
		delivery = notifier.Status
	}
	guard := cfg.Guard("faultline-aggregator", cfg.Token, log.Named("http"))
	handler := api.Handler(api.Config{
		State: state{bc, keeper, opt}, Hub: hub, History: hist, Alerts: engine, Delivery: delivery, Guard: guard, Web: opts.Web, Logger: log.Named("api"),
		Cleanup: &api.Cleanup{Agents: p.Connected, Token: cfg.AgentToken},
	})
	apiSrv := guard.Server(handler, httpx.ServerOptions{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: log.Named("api")})
	probes := probeHandler(probeDeps{disc: disc, fleet: fl, bc: bc, opt: opt, hub: hub, hist: hist, n: notifier, pool: p, guard: guard, health: monitor}, cfg.Profiling)
	probeSrv := guard.Server(probes, httpx.ServerOptions{ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, ErrorLog: log.Named("probe")})

	var wg sync.WaitGroup
	targets := make(chan []discovery.Target)
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goRun(func() { disc.Run(ctx, targets) })
	goRun(func() { p.Run(ctx, targets); rd.Close() })
	goRun(func() { fl.Run(ctx) })
	goRun(func() { bc.Run(ctx) })
	goRun(func() { keeper.Run(ctx) })
	if notifier != nil {
		goRun(func() { notifier.Run(ctx, engine.Firing) })
	}
	if cfg.LocalAgent {
		feed := p.AddLocal(local.Key, local.URL)
		goRun(func() { local.Run(ctx, feed, time.Second) })
	}
	errc := make(chan error, 2)
	goRun(func() { errc <- serve(apiSrv, apiLn) })
	goRun(func() { errc <- serve(probeSrv, probeLn) })
	log.Info("faultline aggregator started", "version", version.Version, "mode", cfg.Mode, "listen", apiLn.Addr().String(),
		"probe_listen", probeLn.Addr().String(), "local_agent", cfg.LocalAgent)
	if opts.Listening != nil {
		opts.Listening(apiLn.Addr(), probeLn.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down")
	hub.Close() // streams end; Shutdown alone would wait for them
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = apiSrv.Shutdown(sctx)
	_ = probeSrv.Shutdown(sctx)
	wg.Wait()
	return runErr
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// advertised turns a listen address into one a browser can use.
func advertised(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
