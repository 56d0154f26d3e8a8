package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// BenchmarkTransitionLatency pushes 10,000 transitions (PUT /v1/breakers/{name} on the
// ingest API of the agent binary, one at a time) and times each until a /v1/stream
// client has read its circuit-breaker event. The baseline, measured in the same run, is
// the PUT's own round trip: the loopback HTTP floor. Target: p99 delivery <= 5 ms.
func BenchmarkTransitionLatency(b *testing.B) {
	const transitions = 10000
	a := startAgent(b, nil, "--mode=host", "--sample-interval=1s", "--log-level=warn")
	s := openStream(b, a.api, "")
	s.nextNamed(b, wire.EventSnapshot)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	bodies := [][]byte{[]byte(`{"state":"open","calls":{"failed":1}}`), []byte(`{"state":"closed","calls":{"succeeded":1}}`)}
	for b.Loop() {
		delivery := make([]time.Duration, 0, transitions)
		roundTrip := make([]time.Duration, 0, transitions)
		for i := range transitions {
			req, _ := http.NewRequest(http.MethodPut, a.ingest+"/v1/breakers/bench", bytes.NewReader(bodies[i%2]))
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			roundTrip = append(roundTrip, time.Since(start))
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("PUT: %d", resp.StatusCode)
			}
			s.nextNamed(b, wire.EventCircuitBreaker)
			delivery = append(delivery, time.Since(start))
		}
		p := func(d []time.Duration, q float64) float64 {
			slices.Sort(d)
			return float64(d[int(q*float64(len(d)-1))]) / float64(time.Millisecond)
		}
		b.ReportMetric(p(delivery, 0.5), "p50-ms")
		b.ReportMetric(p(delivery, 0.99), "p99-ms")
		b.ReportMetric(p(delivery, 1), "max-ms")
		b.ReportMetric(p(roundTrip, 0.5), "put-p50-ms")
		b.ReportMetric(p(roundTrip, 0.99), "put-p99-ms")
		b.ReportMetric(p(delivery, 0.99)/p(roundTrip, 0.99), "p99-vs-put")
		if p99 := p(delivery, 0.99); p99 > 5 {
			b.Logf("target missed: p99 %.2f ms > 5 ms", p99)
		}
	}
}

// BenchmarkFootprint measures the agent binary at 1 Hz with 50 breakers (pushed as one
// batch a second, one of them changing state every 10 s) and one stream consumer,
// beside the baseline (testdata/baseline: a bare Go HTTP server with a 1 Hz ticker) in
// the same run. After a warm-up it reads both processes' CPU time (/proc/<pid>/stat) and
// resident memory (/proc/<pid>/status, every second) over the window,
// FAULTLINE_FOOTPRINT_WINDOW (default 60s). Targets: RSS <= 12 MiB, CPU <= 2 millicores.
// The agent samples in host mode, which reads a fixed set of files: in pod mode the
// work grows with the pod's processes (see BenchmarkSample in agent/sample).
func BenchmarkFootprint(b *testing.B) {
	window := 60 * time.Second
	if w := os.Getenv("FAULTLINE_FOOTPRINT_WINDOW"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			b.Fatalf("FAULTLINE_FOOTPRINT_WINDOW: %v", err)
		}
		window = d
	}
	// The agent built as the Dockerfile builds it (static, stripped, its build tags);
	// the baseline static and stripped too, with the default net/http.
	agentBin := filepath.Join(b.TempDir(), "faultline-agent")
	testbin.BuildStripped(b, "faultline-agent", agentBin)
	baselineBin := buildBaseline(b)
	for b.Loop() {
		var env []string
		for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} { // to compare runtime settings
			if v := os.Getenv("FAULTLINE_AGENT_" + k); v != "" {
				env = append(env, k+"="+v)
			}
		}
		api, ingest := testbin.FreeAddr(b, "127.0.0.1"), testbin.FreeAddr(b, "127.0.0.1")
		proc := testbin.Start(b, agentBin, env, "--listen", api, "--ingest-listen", ingest, "--mode=host", "--sample-interval=1s", "--log-level=warn")
		agent := &agentProc{Process: proc, api: "http://" + api, ingest: "http://" + ingest}
		testbin.WaitHTTP(b, agent.api+"/readyz", http.StatusOK, 20*time.Second)
		baseAddr := testbin.FreeAddr(b, "127.0.0.1")
		base := testbin.Start(b, baselineBin, nil, baseAddr)
		testbin.WaitHTTP(b, "http://"+baseAddr+"/healthz", http.StatusOK, 10*time.Second)

		ctx, stop := context.WithCancel(context.Background())
		go pushBreakers(ctx, b, agent.ingest, 50)
		s := openStream(b, agent.api, "")
		go func() {
			for range s.events { // one consumer, reading everything
			}
		}()

		time.Sleep(5 * time.Second) // warm-up: first samples, connections, heap growth
		agentPID, basePID := agent.Cmd.Process.Pid, base.Cmd.Process.Pid
		cpuA0, cpuB0 := cpuTicks(b, agentPID), cpuTicks(b, basePID)
		var rssA, rssB []float64
		start := time.Now()
		for time.Since(start) < window {
			time.Sleep(time.Second)
			rssA = append(rssA, rssMiB(b, agentPID))
			rssB = append(rssB, rssMiB(b, basePID))
		}
		elapsed := time.Since(start).Seconds()
		if os.Getenv("FAULTLINE_FOOTPRINT_DEBUG") != "" {
			sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", agentPID))
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", agentPID))
			b.Logf("agent smaps_rollup:\n%s\nstatus:\n%s\noutput:\n%s", sm, st, agent.Output())
		}
		mcA := float64(cpuTicks(b, agentPID)-cpuA0) / clockTicks / elapsed * 1000
		mcB := float64(cpuTicks(b, basePID)-cpuB0) / clockTicks / elapsed * 1000
		stop()
		maxA, maxB := slices.Max(rssA), slices.Max(rssB)
		b.ReportMetric(maxA, "agent-rss-MiB")
		b.ReportMetric(mcA, "agent-millicores")
		b.ReportMetric(maxB, "baseline-rss-MiB")
		b.ReportMetric(mcB, "baseline-millicores")
		b.ReportMetric(maxA/maxB, "rss-vs-baseline")
		b.Logf("window %.0f s: agent max RSS %.2f MiB (median %.2f), %.2f millicores; baseline max RSS %.2f MiB, %.2f millicores",
			elapsed, maxA, median(rssA), mcA, maxB, mcB)
		if maxA > 12 || mcA > 2 {
			b.Logf("target missed: RSS %.2f MiB (<= 12), CPU %.2f millicores (<= 2)", maxA, mcA)
		}
	}
}

// buildBaseline builds testdata/baseline, a bare Go HTTP server, static and stripped.
func buildBaseline(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "baseline")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/faultline-agent/testdata/baseline")
	build.Dir = testbin.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the baseline: %v\n%s", err, msg)
	}
	return out
}

// pushBreakers reports n breakers once a second as the Go client would, one batch per
// second with growing counters; breaker 0 changes state every 10 s.
func pushBreakers(ctx context.Context, b *testing.B, ingest string, n int) {
	client := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for tick := 0; ; tick++ {
		var body strings.Builder
		body.WriteString("[")
		for i := range n {
			state := "closed"
			if i == 0 && tick/10%2 == 1 {
				state = "open"
			}
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"name":"breaker-%02d","state":%q,"failure_rate":%d,"calls":{"succeeded":%d,"failed":%d}}`,
				i, state, i%10, tick*20+i, tick)
		}
		body.WriteString("]")
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ingest+"/v1/breakers", strings.NewReader(body.String()))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on Linux).
const clockTicks = 100

func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	_, after, _ := strings.Cut(string(raw), ") ")
	f := strings.Fields(after) // f[0] is field 3 (state): utime is field 14, stime 15
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

func rssMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
