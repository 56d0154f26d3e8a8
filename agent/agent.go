// Package agent is the faultline sidecar: it samples the pod (or cgroup, or host) it
// watches, keeps the application's circuit breakers, and serves both on a read API and
// an SSE stream, while a pod-local listener takes what the application pushes.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/agent/sample"
	"github.com/faultline-dev/faultline/agent/source"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/names"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Stream replay bounds. A metrics event with 50 breakers is about 15 KiB, so the ring
// holds roughly a minute of events at 1 Hz; a client away longer gets a fresh snapshot.
const (
	ringEvents = 512
	ringBytes  = 1 << 20
)

// Server timeouts. Streams set their own per-write deadlines.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

type agent struct {
	cfg     config.Agent
	log     hclog.Logger
	id      wire.Agent
	sampler *sample.Sampler
	reg     *breaker.Registry
	hub     *stream.Hub
	sources []source.Source
	metrics *metrics
	guard   *httpx.Guard
	health  *health.Monitor
	sampled *health.Beat // the sampling loop's
	stall   func()       // tests stall the sampling loop with it
	app     appThroughput
	now     func() time.Time

	pushMu sync.Mutex // a batch's cap check and its storing go together

	mu      sync.Mutex
	latest  *wire.Sample
	derived breakerThroughput // used by the sampling loop only
	refused uint64            // breakers refused as of the last sample; sampling loop only
}

// newAgent builds an agent without starting anything.
func newAgent(cfg config.Agent, log hclog.Logger, getenv func(string) string) *agent {
	a := &agent{cfg: cfg, log: log, now: time.Now}
	a.id = identify(cfg, getenv, hostname, a.now())
	a.hub = stream.New(stream.Options{RingEvents: ringEvents, RingBytes: ringBytes})
	a.reg = breaker.New(a.id.ID, a.onTransition)
	a.reg.SetMax(cfg.MaxBreakers)
	a.sampler = sample.New(sample.Options{
		Mode:               cfg.Mode,
		CPULimitMillicores: cfg.CPULimitMillicores,
		MemoryLimitBytes:   cfg.MemoryLimitBytes,
	})
	a.id.Mode = a.sampler.Mode()
	a.metrics = newMetrics()
	a.guard = cfg.Guard("faultline-agent", cfg.Token, log.Named("http"))
	a.health = health.New(nil)
	a.sampled = a.health.Beat("sampler", "sample", max(3*cfg.SampleInterval, 2*time.Second))
	return a
}

// Run runs the agent until ctx is done: sampling, breaker sources, the read API on
// cfg.Listen and the ingest API on cfg.IngestListen. It returns an error only when it
// cannot start or a listener fails.
func Run(ctx context.Context, cfg config.Agent, log hclog.Logger) error {
	return newAgent(cfg, log, os.Getenv).run(ctx)
}

func (a *agent) run(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	mainLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen (--listen): %w", err)
	}
	ingestLn, err := net.Listen("tcp", cfg.IngestListen)
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("listen (--ingest-listen): %w", err)
	}
	a.sources = source.FromConfig(cfg, log.Named("source"))
	log.Info("agent starting", "id", a.id.ID, "workload", a.id.Workload, "mode", cfg.Mode,
		"listen", mainLn.Addr().String(), "ingest_listen", ingestLn.Addr().String(),
		"sample_interval", cfg.SampleInterval.String(), "sources", len(a.sources))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range a.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx, a.reg)
		}()
	}
	servers := []*http.Server{a.server(a.mainHandler(), "main"), a.server(a.ingestHandler(), "ingest")}
	failed := make(chan error, len(servers))
	for i, ln := range []net.Listener{mainLn, ingestLn} {
		go func() {
			if err := servers[i].Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}

	var runErr error
	ticker := time.NewTicker(cfg.SampleInterval)
	a.tick(ctx)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case runErr = <-failed:
			break loop
		case <-ticker.C:
			a.tick(ctx)
		}
	}
	ticker.Stop()
	a.sampled.Stop()
	log.Info("agent stopping")
	a.hub.Close() // Shutdown waits for handlers; streams end only when told
	shutdownCtx, done := context.WithTimeout(context.Background(), shutdownTimeout)
	defer done()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown", "error", err)
		}
	}
	cancel()
	wg.Wait()
	return runErr
}

func (a *agent) server(h http.Handler, name string) *http.Server {
	return a.guard.Server(h, httpx.ServerOptions{ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, ErrorLog: a.log.Named(name)})
}

// tick takes a sample, adds throughput and the breaker sources' health, and publishes
// it as a metrics event.
func (a *agent) tick(ctx context.Context) {
	if a.stall != nil {
		a.stall()
	}
	defer a.sampled.Tick()
	smp := a.sampler.Sample(ctx)
	now := a.now()
	breakers := a.reg.List()
	smp.Throughput, smp.Collectors = a.throughput(now, breakers, smp.Collectors)
	for _, s := range a.sources {
		smp.Collectors = append(smp.Collectors, s.Status())
	}
	smp.Collectors = append(smp.Collectors, a.breakerStatus(len(breakers)))
	for i := range smp.Collectors { // statuses quote what applications send: keep them in bounds
		smp.Collectors[i].Status = names.Clean(smp.Collectors[i].Status, names.MaxText)
	}
	dropOutOfBounds(&smp)
	a.mu.Lock()
	a.latest = &smp
	a.mu.Unlock()
	a.metrics.sampled()

	data, dropped, err := wire.Marshal(a.snapshot())
	if err != nil {
		a.log.Error("encode metrics event", "error", err)
		return
	}
	if len(dropped) > 0 {
		a.log.Error("metrics event: figures that are not numbers left out", "fields", dropped)
	}
	a.hub.PublishData(wire.EventMetrics, a.id.Namespace, a.id.Workload, data)
}

// throughput picks the application's own figures while they are fresh, else the ones
// derived from breaker call counts, and records which in the throughput collector.
func (a *agent) throughput(now time.Time, breakers []wire.Breaker, cols []wire.Collector) (*wire.Throughput, []wire.Collector) {
	start := time.Now()
	staleAfter := max(3*a.cfg.SampleInterval, 10*time.Second)
	appTP, appWhy := a.app.current(now, staleAfter)
	derived, derivedWhy := a.derived.update(breakers, now)
	col := wire.Collector{Name: "throughput", OK: true}
	tp := appTP
	switch {
	case appTP != nil:
		col.Status = appWhy
	case derived != nil:
		tp, col.Status = derived, derivedWhy+" ("+appWhy+")"
	case strings.Contains(derivedWhy, "next sample"):
		col.Status = derivedWhy
	default:
		col.OK = false
		col.Status = "unavailable: " + appWhy + " and " + derivedWhy
	}
	col.DurationMs = wire.Ms(time.Since(start))
	return tp, append(cols, col)
}

// dropOutOfBounds leaves out a section of the sample whose figures are outside the
// wire's bounds (a counter that went back and wrapped, say), naming it in the collectors:
// the aggregator refuses a sample out of bounds, and one bad reading must not take the
// agent off the dashboard.
func dropOutOfBounds(smp *wire.Sample) {
	sections := []struct {
		name string
		keep func(*wire.Sample)
		drop func()
	}{
		{"cpu", func(t *wire.Sample) { t.CPU = smp.CPU }, func() { smp.CPU = nil }},
		{"memory", func(t *wire.Sample) { t.Memory = smp.Memory }, func() { smp.Memory = nil }},
		{"network", func(t *wire.Sample) { t.Network = smp.Network }, func() { smp.Network = nil }},
		{"processes", func(t *wire.Sample) { t.Process = smp.Process }, func() { smp.Process = nil }},
		{"load", func(t *wire.Sample) { t.Load = smp.Load }, func() { smp.Load = nil }},
		{"throughput", func(t *wire.Sample) { t.Throughput = smp.Throughput }, func() { smp.Throughput = nil }},
		{"self", func(t *wire.Sample) { t.Self = smp.Self }, func() { smp.Self = nil }},
	}
	for _, sec := range sections {
		one := wire.Sample{V: smp.V, IntervalMs: smp.IntervalMs}
		sec.keep(&one)
		err := wire.CheckSample(&one)
		if err == nil {
			continue
		}
		sec.drop()
		smp.Collectors = append(smp.Collectors, wire.Collector{Name: sec.name, Status: names.Clean("unavailable: reading out of bounds: "+err.Error(), names.MaxText)})
	}
	if !(smp.IntervalMs >= 0 && smp.IntervalMs <= wire.MaxMs) {
		smp.IntervalMs = 0
	}
}

// breakerStatus reports the breakers held against max-breakers, and the new ones refused
// for a cap: not ok while breakers are being refused.
func (a *agent) breakerStatus(held int) wire.Collector {
	var refused uint64
	for _, n := range a.reg.Refused() {
		refused += n
	}
	col := wire.Collector{Name: "breakers", OK: refused == a.refused,
		Status: fmt.Sprintf("%d breakers held (max-breakers %d)", held, a.cfg.MaxBreakers)}
	if refused > 0 {
		col.Status += fmt.Sprintf("; %d new breakers refused for max-breakers or max-breakers-per-source", refused)
		if !col.OK {
			col.Status += fmt.Sprintf(", %d since the last sample", refused-a.refused)
		}
	}
	a.refused = refused
	return col
}

// onTransition publishes a transition the moment the registry records it.
func (a *agent) onTransition(tr wire.Transition) {
	a.metrics.transitioned(tr.To)
	if _, err := a.hub.Publish(wire.EventCircuitBreaker, a.id.Namespace, a.id.Workload, tr); err != nil {
		a.log.Error("publish transition", "breaker", tr.Breaker.Name, "error", err)
		return
	}
	a.log.Info("breaker transition", "breaker", tr.Breaker.Name, "from", string(tr.From), "to", string(tr.To), "source", tr.Breaker.Source)
}

func (a *agent) latestSample() *wire.Sample {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.latest
}

// snapshot is the agent's whole state. Seq is the stream position it includes: every
// event up to it is reflected (state is recorded before it is published).
func (a *agent) snapshot() wire.Snapshot {
	_, seq, _ := strings.Cut(a.hub.LastID(), "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return wire.Snapshot{V: wire.Version, Agent: a.id, Seq: n, Sample: a.latestSample(), Breakers: a.reg.List()}
}
