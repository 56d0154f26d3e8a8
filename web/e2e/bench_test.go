package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/systeminfo"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/testbin"
)

var (
	benchDuration = flag.Duration("dashboard.duration", time.Minute, "BenchmarkDashboardFleet: measurement window (the documented figures use 10m)")
	benchTiles    = flag.Int("dashboard.tiles-per-event", 5000, "BenchmarkDashboardFleet: breaker tiles in each metrics event (aggregator --metrics-max-tiles)")
	benchOut      = flag.String("dashboard.out", "", "BenchmarkDashboardFleet: also write the report (markdown) to this file")
	benchProfile  = flag.String("dashboard.profile", "", "BenchmarkDashboardFleet: before the window, record a trace and a CPU profile of the dashboard (10 s each) into this directory")
)

// BenchmarkDashboardFleet measures the dashboard in Chromium with 1,000 pods and 5,000
// breaker tiles updating every second: a simulated fleet (one HTTP stream per pod, see
// fleet_test.go) feeds the real aggregator, configured to put every tile in every
// metrics event, the heaviest case for the browser.
//
// It reports, per metrics event (one a second), the page's main-thread scripting plus
// style and layout time (Performance.getMetrics: ScriptDuration + RecalcStyleDuration +
// LayoutDuration), the data worker's own time (parsing, merging, sorting: off the main
// thread, measured by the worker), long tasks (over 50 ms: a visible freeze), and the JS
// heap of the page and of the worker after a forced garbage collection, at the start and
// the end of the window. The baseline, in the same run, is a bare page that only
// receives the same stream and JSON.parses each event on its main thread.
//
// Run: go test ./web/e2e -run '^$' -bench DashboardFleet -benchtime 1x -timeout 30m \
// -args -dashboard.duration=10m
func BenchmarkDashboardFleet(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes long; not in -short runs")
	}
	opts := fleetOptions{Namespaces: 10, Workloads: 1000, PodsPerWorkload: 1, BreakersPerWorkload: 5, Interval: time.Second, Seed: 1}
	f := startFleet(b, opts)
	cfg := filepath.Join(b.TempDir(), "aggregator.yaml")
	if err := os.WriteFile(cfg, []byte(f.agentsYAML()), 0o644); err != nil {
		b.Fatal(err)
	}
	// A 900 ms broadcast budget keeps the aggregator at 1 Hz on this small machine (it
	// would otherwise widen its interval under the load of the fleet, the browser and
	// itself sharing two cores); the benchmark is about the browser.
	agg := newAggregator(b, "--config="+cfg, fmt.Sprintf("--metrics-max-tiles=%d", *benchTiles), "--broadcast-budget=900ms")
	waitConnected(b, agg.URL(), opts.Pods())

	br := browser.New(b, 1920, 1080)
	br.Navigate(agg.URL() + "/")
	br.WaitFor(60*time.Second, fmt.Sprintf(`document.querySelector('.grid-summary')?.textContent.startsWith(%q)`, fmt.Sprint(opts.Tiles())+" breakers"), `document.querySelector('.grid-summary')?.textContent`)
	browser.Eval[bool](br, `(() => {
		window.__long = [];
		new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({ type: 'longtask' });
		return true;
	})()`)
	base := browser.New(b, 1920, 1080)
	base.Allow("favicon.ico")                 // the browser asks for it when showing an SVG document
	base.Navigate(agg.URL() + "/favicon.svg") // any page of the aggregator's origin
	browser.Eval[bool](base, `(() => {
		window.faultlineStats = { metrics: 0, events: 0 };
		window.__long = [];
		new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({ type: 'longtask' });
		const es = new EventSource('/api/v1/performance/stream');
		for (const t of ['snapshot', 'metrics', 'circuit-breaker', 'alert', 'optimization', 'agent']) {
			es.addEventListener(t, (e) => { JSON.parse(e.data); window.faultlineStats.events++; if (t === 'metrics') window.faultlineStats.metrics++; });
		}
		return true;
	})()`)
	base.WaitFor(30*time.Second, `window.faultlineStats.metrics >= 3`, `window.faultlineStats.metrics`)

	// The first snapshot and the history backfill are not steady state.
	time.Sleep(min(30*time.Second, *benchDuration/4))
	if *benchProfile != "" {
		recordProfile(b, br, 10*time.Second, *benchProfile)
	}
	// Both pages are measured at the same time, so that they share whatever else the
	// machine is doing.
	dash, bare := measure(b, *benchDuration,
		&probe{br: br, dashboard: true, count: `window.faultlineStats.worker.metrics`},
		&probe{br: base, count: `window.faultlineStats.metrics`})

	b.ReportMetric(dash.mainPerUpdate.mean, "main-ms/update")
	b.ReportMetric(dash.mainPerUpdate.p50, "main-p50-ms/update")
	b.ReportMetric(dash.cpuPerUpdate, "renderer-cpu-ms/update")
	b.ReportMetric(dash.workerPerUpdate, "worker-ms/update")
	b.ReportMetric(bare.mainPerUpdate.mean, "baseline-main-ms/update")
	b.ReportMetric(bare.cpuPerUpdate, "baseline-renderer-cpu-ms/update")
	b.ReportMetric(dash.mainPerUpdate.p50/bare.mainPerUpdate.p50, "main-p50/baseline")
	b.ReportMetric(float64(dash.longTasks), "long-tasks")
	b.ReportMetric((dash.heapEnd.main-dash.heapStart.main)/(1<<20), "main-heap-growth-MiB")
	b.ReportMetric((dash.heapEnd.worker-dash.heapStart.worker)/(1<<20), "worker-heap-growth-MiB")
	rep := report(opts, dash, bare)
	b.Logf("\n%s", rep)
	if *benchOut != "" {
		if err := os.WriteFile(*benchOut, []byte(rep), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// waitConnected waits until the aggregator reports n connected agents.
func waitConnected(tb testing.TB, base string, n int) {
	tb.Helper()
	testbin.Eventually(tb, 2*time.Minute, func() error {
		resp, err := http.Get(base + "/api/v1/agents")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Counts map[string]int `json:"counts"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if body.Counts["connected"] < n {
			return fmt.Errorf("%d of %d agents connected", body.Counts["connected"], n)
		}
		return nil
	})
}

type heap struct{ main, worker float64 }

type dist struct{ mean, p50, p95, max float64 }

type measurement struct {
	window          time.Duration
	metricsEvents   int
	renders         int
	mainPerUpdate   dist // script + style + layout per metrics event, per one-second sample
	scriptPerUpdate float64
	stylePerUpdate  float64
	layoutPerUpdate float64
	cpuPerUpdate    float64 // the renderer processes' CPU time (every thread)
	workerPerUpdate float64
	longTasks       int
	longestTask     float64
	heapStart       heap
	heapEnd         heap
	heapSeries      []heap // after a forced GC, once a minute
}

// pageStats is what the page counts itself: the dashboard's faultlineStats, or the
// baseline's counters.
type pageStats struct {
	Renders int `json:"renders"`
	Worker  struct {
		ApplyMs float64 `json:"applyMs"`
		BuildMs float64 `json:"buildMs"`
	} `json:"worker"`
}

// probe is one page being measured; count is a JS expression counting the metrics
// events the page has received.
type probe struct {
	br        *browser.Browser
	dashboard bool
	count     string

	m                     measurement
	first, prev           map[string]float64
	firstCount, prevCount int
	startStats            pageStats
	startLong             int
	cpu0                  float64
	perSecond             []float64
}

func (p *probe) begin(tb testing.TB) {
	if _, err := chromedp.Call(p.br.Ctx, performance.Enable, performance.EnableParams{}); err != nil {
		tb.Fatal(err)
	}
	p.m.heapStart = heapAfterGC(tb, p.br, p.dashboard)
	p.startStats = browser.Eval[pageStats](p.br, `window.faultlineStats`)
	p.startLong = browser.Eval[int](p.br, `window.__long.length`)
	p.cpu0 = rendererCPU(tb, p.br)
	p.first = perfMetrics(tb, p.br)
	p.prev = p.first
	p.firstCount = browser.Eval[int](p.br, p.count)
	p.prevCount = p.firstCount
}

// sample records the main-thread cost per metrics event since the last sample.
func (p *probe) sample(tb testing.TB) {
	cur := perfMetrics(tb, p.br)
	count := browser.Eval[int](p.br, p.count)
	if n := count - p.prevCount; n > 0 {
		cost := mainCost(cur) - mainCost(p.prev)
		p.perSecond = append(p.perSecond, cost*1000/float64(n))
		p.prev, p.prevCount = cur, count
	}
}

func mainCost(m map[string]float64) float64 {
	return m["ScriptDuration"] + m["RecalcStyleDuration"] + m["LayoutDuration"]
}

func (p *probe) end(tb testing.TB, d time.Duration) measurement {
	m := p.m
	m.window = d
	last := perfMetrics(tb, p.br)
	m.metricsEvents = browser.Eval[int](p.br, p.count) - p.firstCount
	endStats := browser.Eval[pageStats](p.br, `window.faultlineStats`)
	m.renders = endStats.Renders - p.startStats.Renders
	if n := float64(m.metricsEvents); n > 0 {
		per := func(k string) float64 { return (last[k] - p.first[k]) * 1000 / n }
		m.scriptPerUpdate, m.stylePerUpdate, m.layoutPerUpdate = per("ScriptDuration"), per("RecalcStyleDuration"), per("LayoutDuration")
		m.workerPerUpdate = (endStats.Worker.ApplyMs + endStats.Worker.BuildMs - p.startStats.Worker.ApplyMs - p.startStats.Worker.BuildMs) / n
		m.cpuPerUpdate = (rendererCPU(tb, p.br) - p.cpu0) * 1000 / n
	}
	m.mainPerUpdate = summarize(p.perSecond)
	long := browser.Eval[[]float64](p.br, `window.__long`)[p.startLong:]
	m.longTasks = len(long)
	for _, l := range long {
		m.longestTask = max(m.longestTask, l)
	}
	m.heapEnd = heapAfterGC(tb, p.br, p.dashboard)
	return m
}

// measure samples the pages every second for d; the dashboard's heap is also read after
// a forced garbage collection once a minute.
func measure(tb testing.TB, d time.Duration, dash, base *probe) (measurement, measurement) {
	tb.Helper()
	dash.begin(tb)
	base.begin(tb)
	start := time.Now()
	nextHeap := start.Add(time.Minute)
	for time.Since(start) < d {
		time.Sleep(time.Second)
		dash.sample(tb)
		base.sample(tb)
		if time.Now().After(nextHeap) && time.Since(start) < d-30*time.Second {
			dash.m.heapSeries = append(dash.m.heapSeries, heapAfterGC(tb, dash.br, true))
			nextHeap = nextHeap.Add(time.Minute)
			dash.prev = perfMetrics(tb, dash.br) // the forced collection is not the page's cost
			dash.prevCount = browser.Eval[int](dash.br, dash.count)
		}
	}
	return dash.end(tb, d), base.end(tb, d)
}

// rendererCPU is the CPU time, in seconds, of every renderer process of the browser.
func rendererCPU(tb testing.TB, br *browser.Browser) float64 {
	tb.Helper()
	res, err := chromedp.CallBrowser(br.Ctx, systeminfo.GetProcessInfo, cdp.Empty{})
	if err != nil {
		tb.Fatalf("process info: %v", err)
	}
	var s float64
	for _, p := range res.ProcessInfo {
		if p.Type == "renderer" {
			s += p.CPUTime
		}
	}
	return s
}

func summarize(v []float64) dist {
	if len(v) == 0 {
		return dist{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return dist{mean: sum / float64(len(s)), p50: q(0.5), p95: q(0.95), max: s[len(s)-1]}
}

func perfMetrics(tb testing.TB, br *browser.Browser) map[string]float64 {
	tb.Helper()
	res, err := chromedp.Call(br.Ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range res.Metrics {
		out[m.Name] = m.Value
	}
	return out
}

// heapAfterGC collects garbage and reads the used JS heap of the page and, for the
// dashboard, of its data worker (a target of its own).
func heapAfterGC(tb testing.TB, br *browser.Browser, withWorker bool) heap {
	tb.Helper()
	read := func(ctx context.Context) float64 {
		if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
			tb.Fatalf("collect garbage: %v", err)
		}
		u, err := chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			tb.Fatalf("heap usage: %v", err)
		}
		return u.UsedSize
	}
	h := heap{main: read(br.Ctx)}
	if !withWorker {
		return h
	}
	wctx, cancel := chromedp.NewContext(br.Ctx, chromedp.WithTargetID(dataWorker(tb, br)))
	h.worker = read(wctx)
	cancel()
	return h
}

// dataWorker is the target of the dashboard's data worker.
func dataWorker(tb testing.TB, br *browser.Browser) target.ID {
	tb.Helper()
	targets, err := chromedp.Targets(br.Ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, t := range targets {
		if t.Type == "worker" && strings.HasSuffix(t.URL, "/js/data-worker.js") {
			return t.TargetID
		}
	}
	tb.Fatalf("the data worker is not among the browser's targets: %+v", targets)
	return ""
}

func report(o fleetOptions, d, bare measurement) string {
	var b strings.Builder
	mib := func(x float64) string { return fmt.Sprintf("%.1f MiB", x/(1<<20)) }
	fmt.Fprintf(&b, "Dashboard, %d pods, %d breaker tiles, %d tiles per metrics event, 1 Hz, window %v (%d metrics events, %d frames drawn)\n\n",
		o.Pods(), o.Tiles(), *benchTiles, d.window, d.metricsEvents, d.renders)
	fmt.Fprintf(&b, "| per metrics event | dashboard | baseline (bare EventSource + JSON.parse) |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| main thread: script + style + layout, mean | %.2f ms | %.2f ms |\n", d.mainPerUpdate.mean, bare.mainPerUpdate.mean)
	fmt.Fprintf(&b, "| main thread, p50 / p95 / max of 1 s samples | %.2f / %.2f / %.2f ms | %.2f / %.2f / %.2f ms |\n",
		d.mainPerUpdate.p50, d.mainPerUpdate.p95, d.mainPerUpdate.max, bare.mainPerUpdate.p50, bare.mainPerUpdate.p95, bare.mainPerUpdate.max)
	fmt.Fprintf(&b, "| of which script / style / layout | %.2f / %.2f / %.2f ms | %.2f / %.2f / %.2f ms |\n",
		d.scriptPerUpdate, d.stylePerUpdate, d.layoutPerUpdate, bare.scriptPerUpdate, bare.stylePerUpdate, bare.layoutPerUpdate)
	fmt.Fprintf(&b, "| data worker (parse, merge, sort; off the main thread) | %.2f ms | n/a |\n", d.workerPerUpdate)
	fmt.Fprintf(&b, "| renderer CPU, every thread (main, worker, compositor, raster) | %.2f ms | %.2f ms |\n", d.cpuPerUpdate, bare.cpuPerUpdate)
	fmt.Fprintf(&b, "| long tasks (> 50 ms) on the main thread | %d (longest %.0f ms) | %d (longest %.0f ms) |\n", d.longTasks, d.longestTask, bare.longTasks, bare.longestTask)
	fmt.Fprintf(&b, "| JS heap after GC, page: start -> end | %s -> %s | %s -> %s |\n", mib(d.heapStart.main), mib(d.heapEnd.main), mib(bare.heapStart.main), mib(bare.heapEnd.main))
	fmt.Fprintf(&b, "| JS heap after GC, worker: start -> end | %s -> %s | n/a |\n", mib(d.heapStart.worker), mib(d.heapEnd.worker))
	if len(d.heapSeries) > 0 {
		var parts []string
		for _, h := range d.heapSeries {
			parts = append(parts, mib(h.main)+" + "+mib(h.worker))
		}
		fmt.Fprintf(&b, "\nHeap after GC each minute (page + worker): %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}
