package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// proc is a child process with a pipe to its stdin (closing it stops sims and the
// baseline) and its stdout lines.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func start(name string, args ...string) (*proc, error) {
	return startEnv(nil, name, args...)
}

func startEnv(env []string, name string, args ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, stdin: in, lines: make(chan string, 16)}
	children.Lock()
	children.cmds = append(children.cmds, cmd)
	children.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<30) // the clients' result is one long line
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	return p, nil
}

// children are every process started, killed (with their process groups) if the
// benchmark is interrupted, and the temporary directories they use, removed then.
var children struct {
	sync.Mutex
	cmds []*exec.Cmd
	dirs []string
}

// stopOnSignal ends the children and removes their directories when the benchmark is
// interrupted (Ctrl-C).
func stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		children.Lock()
		for _, cmd := range children.cmds {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		for _, cmd := range children.cmds {
			_ = cmd.Wait() // an error if proc.stop waits already; the kill ends it anyway
		}
		for _, dir := range children.dirs {
			_ = os.RemoveAll(dir)
		}
		children.Unlock()
		os.Exit(130)
	}()
}

// tempDir makes a temporary directory that an interrupted benchmark removes too.
func tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "fleet-")
	if err != nil {
		return "", err
	}
	children.Lock()
	children.dirs = append(children.dirs, dir)
	children.Unlock()
	return dir, nil
}

func (p *proc) waitLine(want string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return fmt.Errorf("process ended before printing %q", want)
			}
			if l == want {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no %q within %v", want, timeout)
		}
	}
}

func (p *proc) stop() {
	p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// result tells a process that counts between "start" and "stop" lines on its stdin to
// stop, and decodes the JSON line it answers with into v.
func (p *proc) result(v any) error {
	fmt.Fprintln(p.stdin, "stop")
	select {
	case line, ok := <-p.lines:
		if !ok {
			return errors.New("ended without a result")
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			return fmt.Errorf("result: %w", err)
		}
		return nil
	case <-time.After(time.Minute):
		return errors.New("no result within a minute")
	}
}

// usage is a process's CPU time and memory, from /proc.
type usage struct {
	cpu      time.Duration
	rss, hwm uint64
}

func readUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name, which may hold spaces, start after the last ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseUint(fields[11], 10, 64)
	stime, _ := strconv.ParseUint(fields[12], 10, 64)
	u.cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				u.rss = kb << 10
			} else {
				u.hwm = kb << 10
			}
		}
	}
	return u, nil
}

// measureProc samples a process's CPU over window; RSS is the mean of per-second
// readings.
type measured struct {
	cores   float64
	rssMean uint64
	rssMax  uint64
}

func measureProc(pid int, window time.Duration) (measured, error) {
	first, err := readUsage(pid)
	if err != nil {
		return measured{}, err
	}
	start := time.Now()
	var sum, n, peak uint64
	for time.Since(start) < window {
		time.Sleep(time.Second)
		u, err := readUsage(pid)
		if err != nil {
			return measured{}, err
		}
		sum += u.rss
		n++
		peak = max(peak, u.rss)
	}
	last, err := readUsage(pid)
	if err != nil {
		return measured{}, err
	}
	return measured{cores: float64(last.cpu-first.cpu) / float64(time.Since(start)), rssMean: sum / max(n, 1), rssMax: peak}, nil
}

// measureAll measures the processes ps over the same window.
func measureAll(window time.Duration, ps ...*proc) ([]measured, error) {
	ms, errs := make([]measured, len(ps)), make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { ms[i], errs[i] = measureProc(p.cmd.Process.Pid, window) })
	}
	wg.Wait()
	return ms, errors.Join(errs...)
}

type report struct {
	o                         options
	sims                      int
	base                      *measured
	agg                       measured
	aggHWM                    uint64
	connectTook               time.Duration
	broadcast, flip           []time.Duration
	metricsBytes              int
	clientsConnected, dropped int
	interval, lastBroadcastMs float64
	coalescing                bool
	eventsIn                  float64
	harnessCores, load        float64
	internalFlip              [2]float64 // p50, p99 upper bucket bounds, seconds
	internalBroadcast         [2]float64
}

func run(o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.aggregator); err != nil {
		return fmt.Errorf("aggregator binary: %w (run make build)", err)
	}
	stopOnSignal()
	r := report{o: o}
	r.sims = (o.agents + o.perSim - 1) / o.perSim
	fmt.Printf("fleet: %d agents in %d simulator processes, %d clients, %.0f flips/s\n", o.agents, r.sims, o.clients, o.flips)
	var sims []*proc
	defer func() {
		for _, s := range sims {
			s.stop()
		}
	}()
	for s := 0; s < r.sims; s++ {
		first := s * o.perSim
		count := min(o.perSim, o.agents-first)
		p, err := start(self, "-role=sim", fmt.Sprint("-first=", first), fmt.Sprint("-count=", count), fmt.Sprint("-port=", o.port),
			fmt.Sprintf("-flips=%g", o.flips*float64(count)/float64(o.agents)))
		if err != nil {
			return err
		}
		sims = append(sims, p)
	}
	for _, p := range sims {
		if err := p.waitLine("ready", 2*time.Minute); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
	}

	if !o.skipBaseline {
		fmt.Println("baseline: a bare Go client reading every agent stream")
		b, err := start(self, "-role=baseline", fmt.Sprint("-agents=", o.agents), fmt.Sprint("-port=", o.port))
		if err != nil {
			return err
		}
		if err := b.waitLine("connected", 3*time.Minute); err != nil {
			b.stop()
			return fmt.Errorf("baseline: %w", err)
		}
		time.Sleep(o.baseWarmup)
		m, err := measureProc(b.cmd.Process.Pid, o.measure)
		b.stop()
		if err != nil {
			return err
		}
		r.base = &m
		fmt.Printf("baseline: %.3f cores, RSS %.1f MiB\n", m.cores, float64(m.rssMean)/(1<<20))
		time.Sleep(2 * time.Second)
	}

	dir, err := tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	agg, err := startAggregator(o, dir, "--profiling")
	if agg != nil {
		defer agg.stop()
	}
	if err != nil {
		return err
	}
	r.connectTook = agg.connected
	api, probe := agg.api, agg.probe

	cl, err := start("nice", "-n", fmt.Sprint(o.nice), self, "-role=clients", fmt.Sprint("-clients=", o.clients), "-url=http://"+api+"/api/v1/performance/stream?events=metrics,circuit-breaker")
	if err != nil {
		return err
	}
	defer cl.stop()
	if err := waitFor(time.Minute, func() error {
		n, err := scrape(probe, "faultline_aggregator_stream_clients")
		if err != nil {
			return err
		}
		if int(n) < o.clients {
			return fmt.Errorf("%d of %d clients connected", int(n), o.clients)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("aggregator: %d SSE clients connected; warming up %v\n", o.clients, o.warmup)
	time.Sleep(o.warmup)
	in0, _ := scrape(probe, "faultline_aggregator_agent_events_total")
	delay0, _ := buckets(probe, "faultline_aggregator_transition_delay_seconds")
	bcast0, _ := buckets(probe, "faultline_aggregator_broadcast_seconds")
	fmt.Fprintln(cl.stdin, "start")
	harness0 := harnessCPU(append(sims, cl))
	load0 := loadAvg()
	profiled := make(chan error, 1)
	if o.profile != "" {
		go func() {
			profiled <- saveProfile(probe, fmt.Sprintf("profile?seconds=%d", int(o.measure.Seconds())), filepath.Join(o.profile, "cpu.pprof"))
		}()
	}
	m, err := measureProc(agg.cmd.Process.Pid, o.measure)
	if err != nil {
		return err
	}
	if o.profile != "" {
		if err := <-profiled; err != nil {
			return err
		}
		for _, name := range []string{"heap", "goroutine", "allocs"} {
			if err := saveProfile(probe, name, filepath.Join(o.profile, name+".pprof")); err != nil {
				return err
			}
		}
	}
	r.harnessCores = (harnessCPU(append(sims, cl)) - harness0).Seconds() / o.measure.Seconds()
	r.load = (load0 + loadAvg()) / 2
	var res clientResult
	if err := cl.result(&res); err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	r.broadcast, r.flip, r.metricsBytes = res.Broadcast, res.Flip, res.MetricsBytes
	in1, _ := scrape(probe, "faultline_aggregator_agent_events_total")
	if d1, err := buckets(probe, "faultline_aggregator_transition_delay_seconds"); err == nil {
		r.internalFlip = quantiles(delay0, d1)
	}
	if b1, err := buckets(probe, "faultline_aggregator_broadcast_seconds"); err == nil {
		r.internalBroadcast = quantiles(bcast0, b1)
	}
	r.eventsIn = (in1 - in0) / o.measure.Seconds()
	r.agg = m
	if u, err := readUsage(agg.cmd.Process.Pid); err == nil {
		r.aggHWM = u.hwm
	}
	n, _ := scrape(probe, "faultline_aggregator_stream_clients")
	r.clientsConnected = int(n)
	d, _ := scrape(probe, "faultline_aggregator_stream_clients_dropped_total")
	r.dropped = int(d)
	if opt, err := optimization(api); err == nil {
		r.interval, r.coalescing, r.lastBroadcastMs = opt.BroadcastIntervalMs, opt.Coalescing, opt.LastBroadcastMs
	}
	text := r.String()
	fmt.Print(text)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

// aggregator is the aggregator process under test.
type aggregator struct {
	*proc
	api, probe string        // the addresses of its API and of its probes and own metrics
	connected  time.Duration // from its start until every agent was connected
}

// startAggregator starts the aggregator (with the extra flags) on every simulated agent,
// its configuration in dir, and waits until all of them are connected. It returns the
// process once started, even with an error.
func startAggregator(o options, dir string, extra ...string) (*aggregator, error) {
	cfg := &strings.Builder{}
	cfg.WriteString("agents:\n")
	for i := 0; i < o.agents; i++ {
		fmt.Fprintf(cfg, "  - http://%s\n", agentAddr(i, o.port))
	}
	cfgFile := filepath.Join(dir, "aggregator.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	a := &aggregator{api: freeAddr(), probe: freeAddr()}
	var env []string
	if o.aggEnv != "" {
		env = strings.Split(o.aggEnv, ",")
	}
	args := append([]string{"--config=" + cfgFile, "--mode=static", "--listen=" + a.api, "--probe-listen=" + a.probe, "--log-level=warn"}, extra...)
	t0 := time.Now()
	p, err := startEnv(env, o.aggregator, args...)
	if err != nil {
		return nil, err
	}
	a.proc = p
	err = waitFor(3*time.Minute, func() error {
		n, err := scrape(a.probe, `faultline_aggregator_agents{state="connected"}`)
		if err == nil && int(n) < o.agents {
			err = fmt.Errorf("%d of %d agents connected", int(n), o.agents)
		}
		return err
	})
	a.connected = time.Since(t0)
	if err == nil {
		fmt.Printf("aggregator: %d agents connected in %v\n", o.agents, a.connected.Round(time.Millisecond))
	}
	return a, err
}

// optimization is the aggregator's broadcast interval and whether it coalesces.
func optimization(api string) (wire.Optimization, error) {
	var opt wire.Optimization
	resp, err := http.Get("http://" + api + "/api/v1/performance/optimization-status")
	if err != nil {
		return opt, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&opt); err != nil {
		return opt, fmt.Errorf("optimization status: %w", err)
	}
	return opt, nil
}

// saveProfile fetches one of the aggregator's Go profiles (it runs with --profiling).
func saveProfile(probe, what, file string) error {
	resp, err := http.Get("http://" + probe + "/debug/pprof/" + what)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d", what, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	return os.WriteFile(file, data, 0o644)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// scrape reads one sample of the aggregator's own metrics.
func scrape(probe, name string) (float64, error) {
	resp, err := http.Get("http://" + probe + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// recorder collects latencies from every client during the measurement window.
type recorder struct {
	mu           sync.Mutex
	on           bool
	broadcast    []time.Duration
	flip         []time.Duration
	metricsBytes int
}

func (r *recorder) start() { r.mu.Lock(); r.on = true; r.mu.Unlock() }

func (r *recorder) stop() ([]time.Duration, []time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.broadcast, r.flip, r.metricsBytes
}

func (r *recorder) add(name string, d time.Duration, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	if name == wire.EventMetrics {
		r.broadcast = append(r.broadcast, d)
		r.metricsBytes = size
	} else {
		r.flip = append(r.flip, d)
	}
}

// client reads the aggregator's stream, timing each event against the time it carries:
// a metrics event's "time" (when the broadcast began) and a circuit-breaker event's
// transition "time" (when the agent emitted it). Only those fields are decoded.
func client(ctx context.Context, tr *http.Transport, url string, rec *recorder) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	name := ""
	for {
		line, err := br.ReadSlice('\n')
		long := len(line)
		if err == bufio.ErrBufferFull {
			// A long data line: only its start is needed; keep a copy of it and skip
			// the rest (the buffer is reused).
			head := append([]byte(nil), line[:min(len(line), 512)]...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long += len(line)
			}
			line = head
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		now := time.Now()
		size := long
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(bytes.TrimSpace(line[7:]))
		case bytes.HasPrefix(line, []byte("data: ")):
			data := line[6:]
			key := []byte(`"time":"`)
			if name == wire.EventCircuitBreaker {
				if i := bytes.Index(data, []byte(`"transition":{`)); i >= 0 {
					data = data[i:]
				}
			}
			if i := bytes.Index(data, key); i >= 0 && len(data) >= i+len(key)+24 {
				ts := data[i+len(key) : i+len(key)+24]
				if t, err := time.Parse(wire.TimeFormat, string(ts)); err == nil {
					rec.add(name, now.Sub(t), size)
				}
			}
		}
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (r report) String() string {
	b := &strings.Builder{}
	o := r.o
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	fmt.Fprintf(b, "\n## fleet: %d agents, %d SSE clients, %.0f flips/s, %v measured after %v warm-up %s\n\n", o.agents, o.clients, o.flips, o.measure, o.warmup, o.aggEnv)
	fmt.Fprintf(b, "| what | aggregator | baseline (bare Go reader) | target |\n|---|---|---|---|\n")
	base := func(f func(m measured) string) string {
		if r.base == nil {
			return "not run"
		}
		return f(*r.base)
	}
	fmt.Fprintf(b, "| CPU | %.3f cores | %s | <= 1 core |\n", r.agg.cores, base(func(m measured) string { return fmt.Sprintf("%.3f cores", m.cores) }))
	fmt.Fprintf(b, "| RSS (mean over window) | %.1f MiB | %s | |\n", mib(r.agg.rssMean), base(func(m measured) string { return fmt.Sprintf("%.1f MiB", mib(m.rssMean)) }))
	fmt.Fprintf(b, "| RSS per agent | %.1f KiB (peak RSS %.1f MiB) | %s | <= 32 KiB |\n", float64(r.agg.rssMean)/float64(o.agents)/1024, mib(r.aggHWM),
		base(func(m measured) string { return fmt.Sprintf("%.1f KiB", float64(m.rssMean)/float64(o.agents)/1024) }))
	if r.base != nil && r.base.cores > 0 {
		fmt.Fprintf(b, "| ratio to baseline | CPU x%.2f, RSS x%.2f | 1 | |\n", r.agg.cores/r.base.cores, float64(r.agg.rssMean)/float64(r.base.rssMean))
	}
	fmt.Fprintf(b, "| broadcast latency p50 / p99 (%d samples) | %v / %v | | p99 <= 100 ms |\n", len(r.broadcast), pct(r.broadcast, 0.5).Round(time.Microsecond*100), pct(r.broadcast, 0.99).Round(time.Microsecond*100))
	fmt.Fprintf(b, "| flip -> client p50 / p99 (%d samples) | %v / %v | | p99 <= 50 ms |\n", len(r.flip), pct(r.flip, 0.5).Round(time.Microsecond*100), pct(r.flip, 0.99).Round(time.Microsecond*100))
	bound := func(sec float64) string {
		if math.IsInf(sec, 1) {
			return "> the largest bucket"
		}
		return "<= " + time.Duration(sec*1e9).String()
	}
	fmt.Fprintf(b, "| inside the aggregator: transition seen by the agent -> published, p50 / p99 (bucket bounds) | %s / %s | | |\n",
		bound(r.internalFlip[0]), bound(r.internalFlip[1]))
	fmt.Fprintf(b, "| inside the aggregator: broadcast duration p50 / p99 (bucket bounds) | %s / %s | | |\n",
		bound(r.internalBroadcast[0]), bound(r.internalBroadcast[1]))
	fmt.Fprintf(b, "| agent events received | %.0f /s | | |\n", r.eventsIn)
	fmt.Fprintf(b, "| metrics event size | %.1f KiB | | |\n", float64(r.metricsBytes)/1024)
	fmt.Fprintf(b, "| broadcast interval at the end | %.0f ms (coalescing %v, last broadcast took %.0f ms) | | |\n", r.interval, r.coalescing, r.lastBroadcastMs)
	fmt.Fprintf(b, "| clients connected at the end / cut off | %d / %d | | |\n", r.clientsConnected, r.dropped)
	fmt.Fprintf(b, "| time for all agents to connect | %v | | |\n", r.connectTook.Round(time.Millisecond))
	fmt.Fprintf(b, "| harness CPU (simulators + clients, niced) / load average | %.2f cores / %.1f | | |\n", r.harnessCores, r.load)
	return b.String()
}

// harnessCPU is the CPU time used so far by the harness processes.
func harnessCPU(ps []*proc) time.Duration {
	var total time.Duration
	for _, p := range ps {
		// nice execs the program, so the pid is the program's.
		if u, err := readUsage(p.cmd.Process.Pid); err == nil {
			total += u.cpu
		}
	}
	return total
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// clientResult is what the clients process reports.
type clientResult struct {
	Broadcast    []time.Duration `json:"broadcast"`
	Flip         []time.Duration `json:"flip"`
	MetricsBytes int             `json:"metrics_bytes"`
}

// clients runs the SSE clients in their own (niced) process: latencies are recorded
// between the "start" and "stop" lines on stdin, then printed as one JSON line.
func clients(o options) error {
	var rec recorder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, DisableCompression: true}
	for c := 0; c < o.clients; c++ {
		go client(ctx, tr, o.url, &rec)
		if c%50 == 49 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			rec.start()
		case "stop":
			var res clientResult
			res.Broadcast, res.Flip, res.MetricsBytes = rec.stop()
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
	}
	return nil
}

// buckets reads a histogram's cumulative bucket counts by upper bound.
func buckets(probe, name string) (map[float64]float64, error) {
	resp, err := http.Get("http://" + probe + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	prefix := name + `_bucket{le="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(count, 64)
		if err1 == nil && err2 == nil {
			out[bound] = n
		}
	}
	return out, nil
}

// quantiles returns the bucket bounds holding the p50 and p99 of what was observed
// between two readings.
func quantiles(before, after map[float64]float64) [2]float64 {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	var out [2]float64
	for i, q := range []float64{0.5, 0.99} {
		for _, b := range bounds {
			if after[b]-before[b] >= q*total {
				out[i] = b
				break
			}
		}
	}
	return out
}
