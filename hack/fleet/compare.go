package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// probeNamespace is the namespace whose agents are age probes under -age-probe: 5 % of
// the fleet (every twentieth workload of 20 pods), spread over every simulator and over
// the second.
const probeNamespace = "ns-00"

// isAgeProbe reports whether agent i is in probeNamespace.
func isAgeProbe(i int) bool { return (i/podsPerWorkload)%namespaces == 0 }

// phase is what one system (or baseline) did in its measurement window.
type phase struct {
	m         measured
	samples   float64       // agent samples ingested per second
	attempted float64       // Prometheus and the bare scraper: scrapes attempted per second
	got       []reading     // what the consumer saw
	held      time.Duration // mean age of the view the consumer holds, over the window
	load      [2]float64    // load average at the start and the end of the window
}

// comparison is the report of -role=compare.
type comparison struct {
	o                        options
	agg, prom                *phase // measured side by side
	sseBase, scrapeBase      *phase // measured side by side, after them
	aggStarted, promStarted  time.Duration
	promTargets              int     // targets Prometheus had scraped when the warm-up began
	series                   float64 // Prometheus: series in its head block
	simCores                 float64 // the simulators' CPU beside the two systems
	loadBefore, loadAfter    string
	eventBytes, probesInView int               // the aggregator's last metrics event
	interval                 wire.Optimization // the aggregator's broadcast interval at the end
}

// compare runs, against the same simulated agents and at the same time, the faultline
// aggregator reading their streams and Prometheus scraping their /metrics every second,
// then, as the baseline of each, the bare Go readers of the same data, and reports the
// CPU and memory each spends per agent sample and how old the samples are when a
// consumer sees them. Prometheus missing is a skip, or a failure under
// FAULTLINE_REQUIRE_ALL=1.
func compare(o options) error {
	if _, err := os.Stat(o.prometheus); err != nil {
		msg := fmt.Sprintf("Prometheus not found at %s (make tools installs it into bin/, or pass -prometheus)", o.prometheus)
		if os.Getenv("FAULTLINE_REQUIRE_ALL") == "1" {
			return errors.New(msg + "; required (FAULTLINE_REQUIRE_ALL=1)")
		}
		fmt.Println("fleet compare: skipped: " + msg)
		return nil
	}
	if _, err := os.Stat(o.aggregator); err != nil {
		return fmt.Errorf("aggregator binary: %w (run make build)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	stopOnSignal()
	dir, err := tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := comparison{o: o, loadBefore: uptime()}
	sims, err := startSims(self, o, "-age-probe")
	defer func() {
		for _, s := range sims {
			s.stop()
		}
	}()
	if err != nil {
		return err
	}
	if err := c.sideBySide(dir, sims); err != nil {
		return err
	}
	if !o.skipBaseline {
		if err := c.baselines(self); err != nil {
			return err
		}
	}
	c.loadAfter = uptime()
	text := c.String()
	fmt.Print(text)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

// startSims starts the simulator processes (with the extra flags) and waits until they
// serve.
func startSims(self string, o options, extra ...string) ([]*proc, error) {
	var sims []*proc
	for first := 0; first < o.agents; first += o.perSim {
		count := min(o.perSim, o.agents-first)
		args := append([]string{"-role=sim", fmt.Sprint("-first=", first), fmt.Sprint("-count=", count), fmt.Sprint("-port=", o.port),
			fmt.Sprintf("-flips=%g", o.flips*float64(count)/float64(o.agents))}, extra...)
		p, err := start(self, args...)
		if err != nil {
			return sims, err
		}
		sims = append(sims, p)
	}
	for _, p := range sims {
		if err := p.waitLine("ready", 2*time.Minute); err != nil {
			return sims, fmt.Errorf("simulator: %w", err)
		}
	}
	fmt.Printf("fleet: %d agents in %d simulator processes, %.0f flips/s, agents of %s are age probes\n", o.agents, len(sims), o.flips, probeNamespace)
	return sims, nil
}

// sideBySide measures, over one window, the aggregator reading every agent's stream
// with one client of its stream, and Prometheus scraping every agent's /metrics each
// second with one consumer of its HTTP API: the consumers whose view's age is measured.
func (c *comparison) sideBySide(dir string, sims []*proc) error {
	o := c.o
	fmt.Println("faultline and Prometheus, side by side: the aggregator reads every agent's stream, Prometheus scrapes every agent's /metrics each second")
	agg, err := startAggregator(o, dir)
	if agg != nil {
		defer agg.stop()
	}
	if err != nil {
		return err
	}
	c.aggStarted = agg.connected
	api, probe := agg.api, agg.probe
	t0 := time.Now()
	prom, addr, scraped, err := startPrometheus(o, dir)
	if prom != nil {
		defer prom.stop()
	}
	if err != nil {
		return err
	}
	c.promStarted, c.promTargets = time.Since(t0), scraped
	fmt.Printf("Prometheus: %d of %d targets scraped %v after start; warming both up %v\n", scraped, o.agents, c.promStarted.Round(time.Millisecond), o.warmup)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var aggAges, promAges ageRecorder
	go viewClient(ctx, "http://"+api+"/api/v1/performance/stream?events=metrics", &aggAges)
	go promConsumer(ctx, addr, &promAges)
	time.Sleep(o.warmup)
	ev0, err1 := scrape(probe, "faultline_aggregator_agent_events_total")
	tr0, err2 := scrape(probe, "faultline_aggregator_breaker_transitions_total")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	aggAges.start()
	promAges.start()
	c.agg, c.prom = &phase{}, &phase{}
	load0, from, harness0 := loadAvg(), time.Now(), harnessCPU(sims)
	ms, err := measureAll(o.measure, agg.proc, prom)
	if err != nil {
		return err
	}
	to, load1 := time.Now(), loadAvg()
	c.simCores = (harnessCPU(sims) - harness0).Seconds() / to.Sub(from).Seconds()
	c.agg.got, c.agg.held = aggAges.stop(to)
	c.prom.got, c.prom.held = promAges.stop(to)
	aggAges.mu.Lock()
	c.eventBytes, c.probesInView = aggAges.size, aggAges.probes
	aggAges.mu.Unlock()
	c.agg.m, c.prom.m = ms[0], ms[1]
	c.agg.load, c.prom.load = [2]float64{load0, load1}, [2]float64{load0, load1}

	if c.interval, err = optimization(api); err != nil {
		return err
	}
	ev1, err1 := scrape(probe, "faultline_aggregator_agent_events_total")
	tr1, err2 := scrape(probe, "faultline_aggregator_breaker_transitions_total")
	// up is 1 for each successful scrape and 0 for each failed one.
	window := fmt.Sprintf("[%dms]", to.Sub(from).Milliseconds())
	ok, err3 := promQuery(addr, "sum(sum_over_time(up"+window+"))", to)
	all, err4 := promQuery(addr, "sum(count_over_time(up"+window+"))", to)
	series, err5 := scrape(addr, "prometheus_tsdb_head_series")
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	c.agg.samples = (ev1 - ev0 - (tr1 - tr0)) / to.Sub(from).Seconds()
	c.prom.samples, c.prom.attempted, c.series = ok/to.Sub(from).Seconds(), all/to.Sub(from).Seconds(), series
	for _, s := range []struct {
		name string
		p    *phase
	}{{"aggregator", c.agg}, {"Prometheus", c.prom}} {
		fmt.Printf("%s: %.3f cores, RSS %.1f MiB, %.0f agent samples/s\n", s.name, s.p.m.cores, float64(s.p.m.rssMean)/(1<<20), s.p.samples)
	}
	return nil
}

// baselines measures, over one window, a bare Go client reading every agent's stream
// and one scraping every agent's /metrics each second, both discarding what they read.
func (c *comparison) baselines(self string) error {
	o := c.o
	fmt.Println("baselines, side by side: bare Go clients read every agent's stream and scrape every agent's /metrics each second")
	sse, err := start(self, "-role=baseline", fmt.Sprint("-agents=", o.agents), fmt.Sprint("-port=", o.port))
	if err != nil {
		return err
	}
	defer sse.stop()
	scr, err := start(self, "-role=scrapers", fmt.Sprint("-agents=", o.agents), fmt.Sprint("-port=", o.port))
	if err != nil {
		return err
	}
	defer scr.stop()
	if err := errors.Join(sse.waitLine("connected", 3*time.Minute), scr.waitLine("scraping", 3*time.Minute)); err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	time.Sleep(o.baseWarmup)
	fmt.Fprintln(scr.stdin, "start")
	load0 := loadAvg()
	ms, err := measureAll(o.measure, sse, scr)
	if err != nil {
		return err
	}
	load := [2]float64{load0, loadAvg()}
	var res scrapeResult
	if err := scr.result(&res); err != nil {
		return fmt.Errorf("scrapers: %w", err)
	}
	// The stream reader reads what the agents send: one metrics event each a second.
	c.sseBase = &phase{m: ms[0], samples: float64(o.agents), load: load}
	c.scrapeBase = &phase{m: ms[1], samples: float64(res.Scrapes) / o.measure.Seconds(), attempted: float64(res.Scrapes+res.Failed) / o.measure.Seconds(), load: load}
	fmt.Printf("baselines: stream reader %.3f cores, scraper %.3f cores\n", ms[0].cores, ms[1].cores)
	return nil
}

// viewClient reads the aggregator's metrics events. The view's age is the client's
// receive time minus the mean sample time of the age probes, which the namespace's
// total working set carries (see ageMarker); the aggregator's own share is the
// broadcast latency (receive time minus the event's time).
func viewClient(ctx context.Context, url string, rec *ageRecorder) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "view client:", err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		now := time.Now()
		var m view.Metrics
		if err := json.Unmarshal(data, &m); err != nil {
			fmt.Fprintln(os.Stderr, "view client:", err)
			return
		}
		for _, ns := range m.Namespaces {
			if ns.Name == probeNamespace && ns.Totals.AgentsConnected > 0 {
				rec.add(reading{at: now, age: markerAge(now, float64(ns.Totals.MemoryBytes)/float64(ns.Totals.AgentsConnected)), own: now.Sub(m.Time.Time)})
				rec.mu.Lock()
				rec.size, rec.probes = len(data), ns.Totals.AgentsConnected
				rec.mu.Unlock()
			}
		}
	}
}

// reading is one answer a consumer received: when, how old the agents' samples in it
// were, and how long of that was after the system had them.
type reading struct {
	at       time.Time
	age, own time.Duration
}

// ageRecorder keeps what a consumer received during the measurement window.
type ageRecorder struct {
	mu           sync.Mutex
	on           bool
	got          []reading
	size, probes int // viewClient: the last event's size and the age probes in it
}

func (r *ageRecorder) start() { r.mu.Lock(); r.on = true; r.mu.Unlock() }

// stop ends the window at until and returns the readings and the mean age of the view
// the consumer held from its first reading until then: until the next reading it holds
// the last one, which ages.
func (r *ageRecorder) stop(until time.Time) ([]reading, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	if len(r.got) == 0 {
		return nil, 0
	}
	var sum float64 // age integrated over time, in seconds squared
	for i, g := range r.got {
		end := until
		if i+1 < len(r.got) {
			end = r.got[i+1].at
		}
		d := end.Sub(g.at).Seconds()
		sum += g.age.Seconds()*d + d*d/2
	}
	return r.got, time.Duration(sum / until.Sub(r.got[0].at).Seconds() * float64(time.Second))
}

func (r *ageRecorder) add(g reading) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.got = append(r.got, g)
	}
}

func uptime() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unavailable: " + err.Error()
	}
	f := strings.Fields(string(b))
	return fmt.Sprintf("%s %s %s (1, 5, 15 min)", f[0], f[1], f[2])
}

// String is the comparison's report (markdown).
func (c comparison) String() string {
	o := c.o
	b := &strings.Builder{}
	fmt.Fprintf(b, "\n## fleet against Prometheus: %d agents at 1 Hz, %.0f flips/s; the two systems measured side by side over %v after %v warm-up, then the two baselines side by side\n\n",
		o.agents, o.flips, o.measure, o.warmup)
	fmt.Fprintf(b, "Prometheus: %s. Load average before: %s; after: %s.\n\n", promVersion(o.prometheus), c.loadBefore, c.loadAfter)
	cols := []*phase{c.agg, c.prom, c.sseBase, c.scrapeBase}
	fmt.Fprintf(b, "| | faultline aggregator | Prometheus | baseline: bare SSE reader | baseline: bare scraper |\n|---|---|---|---|---|\n")
	row := func(name string, f func(p *phase) string) {
		fmt.Fprintf(b, "| %s |", name)
		for _, p := range cols {
			if p == nil {
				fmt.Fprint(b, " not run |")
				continue
			}
			fmt.Fprintf(b, " %s |", f(p))
		}
		fmt.Fprintln(b)
	}
	row("agent samples read", func(p *phase) string {
		switch {
		case p == c.sseBase:
			return fmt.Sprintf("%.0f /s (the agents' rate)", p.samples)
		case p.attempted > 0:
			return fmt.Sprintf("%.0f /s (%.0f /s attempted)", p.samples, p.attempted)
		}
		return fmt.Sprintf("%.0f /s", p.samples)
	})
	row("CPU", func(p *phase) string { return fmt.Sprintf("%.3f cores", p.m.cores) })
	row("**CPU per agent sample**", func(p *phase) string { return fmt.Sprintf("**%.1f µs**", perSample(p)) })
	row("RSS (mean over the window)", func(p *phase) string { return fmt.Sprintf("%.1f MiB", float64(p.m.rssMean)/(1<<20)) })
	row("RSS per agent", func(p *phase) string { return fmt.Sprintf("%.1f KiB", float64(p.m.rssMean)/float64(o.agents)/1024) })
	row("**sample age when the consumer receives it**, mean / p50 / p99 (answers)", ages(func(g reading) time.Duration { return g.age }))
	row("of which after the system had it (faultline: from the broadcast; Prometheus: from the scrape, time() - timestamp())", ages(func(g reading) time.Duration { return g.own }))
	row("**age of the view the consumer holds**, mean over the window", func(p *phase) string {
		if p.got == nil {
			return ""
		}
		return fmt.Sprintf("**%v**", p.held.Round(time.Millisecond))
	})
	row("load average, window start / end", func(p *phase) string { return fmt.Sprintf("%.1f / %.1f", p.load[0], p.load[1]) })
	fmt.Fprintln(b)
	fmt.Fprintf(b, "- faultline: all agents connected %v after start; the consumer (one SSE client) received %d metrics events (%.1f KiB, %d age probes in view); broadcast interval at the end %.0f ms (coalescing %v).\n",
		c.aggStarted.Round(time.Millisecond), len(c.agg.got), float64(c.eventBytes)/1024, c.probesInView, c.interval.BroadcastIntervalMs, c.interval.Coalescing)
	fmt.Fprintf(b, "- Prometheus: %d of %d targets scraped %v after start; %.0f series in its head block (%.0f per agent); the consumer received %d answers to its pairs of queries (at most 4 pairs a second).\n",
		c.promTargets, o.agents, c.promStarted.Round(time.Millisecond), c.series, c.series/float64(o.agents), len(c.prom.got))
	fmt.Fprintf(b, "- The simulators took %.2f cores beside the two systems in their window.\n", c.simCores)
	cpu := perSample(c.agg) / perSample(c.prom)
	received := mean(c.agg.got).Seconds() / mean(c.prom.got).Seconds()
	held := c.agg.held.Seconds() / c.prom.held.Seconds()
	fmt.Fprintf(b, "- **faultline / Prometheus: CPU per agent sample x%.3f (goal <= 0.5: %s); sample age when received x%.3f, of the view held x%.3f (goal <= 0.1: %s, %s)**; RSS per agent x%.3f.\n",
		cpu, metOrMissed(cpu <= 0.5), received, held, metOrMissed(received <= 0.1), metOrMissed(held <= 0.1), float64(c.agg.m.rssMean)/float64(c.prom.m.rssMean))
	return b.String()
}

func perSample(p *phase) float64 {
	if p.samples == 0 {
		return 0
	}
	return p.m.cores / p.samples * 1e6
}

// mean is the mean age of the samples in rs.
func mean(rs []reading) time.Duration {
	var sum time.Duration
	for _, g := range rs {
		sum += g.age
	}
	return sum / time.Duration(max(1, len(rs)))
}

// ages is a report cell: the mean, p50 and p99 of one duration of a phase's readings.
func ages(get func(g reading) time.Duration) func(p *phase) string {
	return func(p *phase) string {
		if len(p.got) == 0 {
			return ""
		}
		ds := make([]time.Duration, len(p.got))
		var sum time.Duration
		for i, g := range p.got {
			ds[i] = get(g)
			sum += ds[i]
		}
		r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		return fmt.Sprintf("%v / %v / %v (%d)", r(sum/time.Duration(len(ds))), r(pct(ds, 0.5)), r(pct(ds, 0.99)), len(ds))
	}
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
